"""The rehearsal's callers: sticky users, seeded picks, ratings, and what they report."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rehearsal.run import _feedback_summary
from rehearsal.scenario import FeedbackBehaviour
from rehearsal.traffic import (
    Exchange,
    FeedbackTally,
    TrafficDriver,
    assess_rates,
    decide_caller,
)
from tests.support.servers import serve_in_thread

pytestmark = pytest.mark.integration


def _service(feedback_status: int) -> tuple[FastAPI, list[dict[str, Any]], list[dict[str, Any]]]:
    """A service-shaped app: version by user parity; feedback answered `feedback_status`."""
    app = FastAPI()
    asked: list[dict[str, Any]] = []
    rated: list[dict[str, Any]] = []

    @app.post("/v1/answers")
    async def answers(request: Request) -> JSONResponse:
        body = await request.json()
        asked.append(body)
        version = "1.1.0" if int(body["user"].split("-")[1]) % 2 else "1.0.0"
        payload = {
            "request_id": f"r{len(asked)}",
            "outcome": "unknown" if version == "1.1.0" else "answered",
            "citations": [] if version == "1.1.0" else [{"n": 1}],
        }
        return JSONResponse(payload, headers={"X-Prompt-Version": version})

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> JSONResponse:
        rated.append(await request.json())
        return JSONResponse({}, status_code=feedback_status)

    return app, asked, rated


def _drive(url: str, seconds: float, **feedback: FeedbackBehaviour) -> TrafficDriver:
    driver = TrafficDriver(url, "p", ["q1", "q2", "q3"], 40, 6, 7, feedback)
    driver.start()
    time.sleep(seconds)
    driver.stop()
    return driver


@pytest.fixture
def missing_feedback() -> Iterator[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]:
    app, asked, rated = _service(404)
    with serve_in_thread(app) as url:
        yield url, asked, rated


def test_callers_ratings_and_a_missing_feedback_endpoint(
    missing_feedback: tuple[str, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    url, asked, rated = missing_feedback
    behaviour = {"1.1.0": FeedbackBehaviour(rate=1.0, negative=0.5)}

    driver = _drive(url, 1.5, **behaviour)

    assert 5 <= len(asked) <= 40 * 1.5 + 2  # a fixed schedule, never a burst
    assert {body["user"] for body in asked} <= {f"user-{n}" for n in range(6)}
    assert {body["question"] for body in asked} <= {"q1", "q2", "q3"}
    by_version = Counter(e.version for e in driver.exchanges)
    assert driver.tally.sent["1.1.0"] == by_version["1.1.0"] == len(rated)
    assert driver.tally.sent["1.0.0"] == 0
    assert {r["score"] for r in rated} == {-1, 1}
    assert all(r["request_id"].startswith("r") for r in rated)
    assert driver.tally.endpoint_missing
    summary = _feedback_summary(driver.tally, wanted=True)
    assert summary["problem"].startswith(f"POST /v1/feedback answered 404 to all {len(rated)}")


def test_the_same_seed_picks_the_same_callers_and_questions() -> None:
    questions = ["q1", "q2", "q3"]
    picks = [decide_caller(7, n, 500, questions)[1:] for n in range(200)]

    assert picks == [decide_caller(7, n, 500, questions)[1:] for n in range(200)]
    assert picks != [decide_caller(8, n, 500, questions)[1:] for n in range(200)]
    assert len({user for user, _ in picks}) > 150  # spread over the 500 callers
    assert {question for _, question in picks} == set(questions)


def test_accepted_feedback_is_not_a_problem() -> None:
    tally = FeedbackTally()
    tally.sent["1.1.0"] = 3
    tally.statuses[202] = 2
    tally.statuses[404] = 1

    assert not tally.endpoint_missing
    assert "problem" not in _feedback_summary(tally, wanted=True)
    assert "no rating was sent" in _feedback_summary(FeedbackTally(), wanted=True)["problem"]
    assert "problem" not in _feedback_summary(FeedbackTally(), wanted=False)


def test_rates_of_exchanges() -> None:
    exchanges = [
        Exchange(0, "v", 200, "answered", 100, cited=True),
        Exchange(0, "v", 200, "answered", 300, cited=False),
        Exchange(0, "v", 200, "unknown", 200, cited=False),
        Exchange(0, "v", 200, "refused", 50, cited=False),
        Exchange(0, "v", 503, "unavailable", 10, cited=False),
        Exchange(0, "", 0, "", 30_000, cited=False),
    ]

    rates = assess_rates(exchanges)

    assert rates == {
        "requests": 6,
        "errorRate": 2 / 6,
        "unknownRate": 1 / 6,
        "refusedRate": 1 / 6,
        "uncitedRate": 0.5,
        "p95LatencyMs": 300,
    }
    assert assess_rates([])["errorRate"] is None
