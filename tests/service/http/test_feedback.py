"""Feedback rules (pure) and the Feedback component over real stores: counting once,
replacing, retracting, tenant scoping, prompt scope, comments, and a failing store that
never touches the answer."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Iterator

import pytest
import redis.asyncio
import structlog.testing
from pydantic import ValidationError

from service.answering.outcome import Outcome
from service.answering.schemas import AnswerResponse, Usage
from service.errors import FeedbackNotFoundError, FeedbackUnavailableError, PermissionDeniedError
from service.http.auth import Caller
from service.http.feedback import Feedback, FeedbackStore
from service.http.feedback_memory import MemoryFeedbackStore
from service.http.feedback_records import (
    MAX_COMMENT_CHARS,
    Answered,
    FeedbackRequest,
    RatingChange,
    build_feedback_key,
    decide_rating,
    normalise_score,
)
from service.http.feedback_redis import RedisFeedbackStore
from service.settings import Settings
from service.telemetry.metrics import Metrics
from service.telemetry.request_log import ContentMode
from tests.support.redis import run_redis_server

SHOP = Caller("web", "shop", frozenset({"*"}), "key:web")
BANK = Caller("ops", "bank", frozenset({"*"}), "key:ops")
NARROW = Caller("faq-only", "shop", frozenset({"faq"}), "key:faq-only")
LABELS = {"prompt": "policy-qa", "version": "1.1.0"}


# --- Pure rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "normalised"),
    [(-1, 0.0), (0, 0.5), (1, 1.0), (0.8, 0.9), (0.0, 0.5), (-0.5, 0.25)],
    ids=["thumbs-down", "neutral", "thumbs-up", "rating-0.8", "rating-0", "negative-half"],
)
def test_scores_normalise_to_the_unit_interval(score: float, normalised: float) -> None:
    assert normalise_score(score) == pytest.approx(normalised)


@pytest.mark.parametrize(
    ("previous", "score", "change"),
    [
        (None, 1.0, RatingChange(counted=True, added=1.0, retracted=0.0)),
        (1.0, -1.0, RatingChange(counted=False, added=0.0, retracted=1.0)),
        (-1.0, -1.0, RatingChange(counted=False, added=0.0, retracted=0.0)),
        (0.0, 1.0, RatingChange(counted=False, added=1.0, retracted=0.5)),
    ],
    ids=["first-rating", "up-replaced-by-down", "down-replaced-by-down", "neutral-to-up"],
)
def test_a_rating_counts_once_and_retracts_what_it_replaces(
    previous: float | None, score: float, change: RatingChange
) -> None:
    assert decide_rating(previous, score) == change


def test_keys_are_scoped_by_tenant() -> None:
    assert build_feedback_key("shop", "r1") != build_feedback_key("bank", "r1")
    assert build_feedback_key("shop", "r1") == build_feedback_key("shop", "r1")
    assert build_feedback_key("a\0b", "c") != build_feedback_key("a", "b\0c")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"request_id": "r", "score": 1.5}, "score"),
        ({"request_id": "r", "score": -1.01}, "score"),
        ({"request_id": "r", "score": math.nan}, "score"),
        ({"request_id": "r", "score": math.inf}, "score"),
        ({"request_id": "r", "score": "1"}, "score"),
        ({"request_id": "r", "score": True}, "score"),
        ({"request_id": "r", "score": None}, "score"),
        ({"request_id": "r"}, "score"),
        ({"score": 1}, "request_id"),
        ({"request_id": "", "score": 1}, "request_id"),
        ({"request_id": "r" * 129, "score": 1}, "request_id"),
        ({"request_id": "../etc/passwd x", "score": 1}, "request_id"),
        ({"request_id": 7, "score": 1}, "request_id"),
        ({"request_id": "r", "score": 1, "comment": "x" * (MAX_COMMENT_CHARS + 1)}, "comment"),
        ({"request_id": "r", "score": 1, "comment": 42}, "comment"),
        ({"request_id": "r", "score": 1, "tenant": "bank"}, "tenant"),
    ],
    ids=[
        "score-above-1",
        "score-below-minus-1",
        "nan",
        "infinity",
        "score-as-string",
        "score-as-bool",
        "score-null",
        "score-missing",
        "request-id-missing",
        "request-id-empty",
        "request-id-too-long",
        "request-id-path-like",
        "request-id-number",
        "comment-too-long",
        "comment-number",
        "extra-field",
    ],
)
def test_bad_ratings_are_refused_naming_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        FeedbackRequest.model_validate(body)
    assert {error["loc"][0] for error in raised.value.errors()} == {field}


def test_a_remembered_answer_round_trips_through_json() -> None:
    for answered in (Answered("p", "1.0.0", "shop"), Answered("p", "1.0.0", "shop", -0.5)):
        assert Answered.from_json(answered.to_json()) == answered


# --- The component --------------------------------------------------------------------


def _answer(request_id: str, outcome: Outcome = Outcome.ANSWERED) -> AnswerResponse:
    return AnswerResponse(
        request_id=request_id,
        prompt="policy-qa",
        version="1.1.0",
        model="gpt-test",
        outcome=outcome,
        answer="Refunds take 5 days [1].",
        citations=[],
        usage=Usage(input_tokens=1, output_tokens=1, cost_usd=0.0),
        cache_hit=False,
        latency_ms=1.0,
    )


def _rating(request_id: str, score: float, comment: str | None = None) -> FeedbackRequest:
    return FeedbackRequest(request_id=request_id, score=score, comment=comment)


def _value(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name, LABELS) or 0.0


async def _answered(feedback: Feedback, request_id: str, caller: Caller = SHOP) -> None:
    feedback.remember(request_id, _answer(request_id), caller.tenant)
    await asyncio.sleep(0)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with run_redis_server() as url:
        yield url


def _store(kind: str, request: pytest.FixtureRequest) -> tuple[FeedbackStore, object]:
    if kind == "memory":
        return MemoryFeedbackStore(), None
    client = redis.asyncio.from_url(request.getfixturevalue("redis_url"))
    return RedisFeedbackStore(client, prefix=f"test:{uuid.uuid4().hex}:"), client


STORES = ["memory", pytest.param("redis", marks=pytest.mark.integration)]


@pytest.mark.parametrize("kind", STORES)
@pytest.mark.asyncio
async def test_ratings_count_once_and_replacements_retract(
    kind: str, request: pytest.FixtureRequest
) -> None:
    store, client = _store(kind, request)
    metrics = Metrics()
    feedback = Feedback(store, ttl_seconds=60, metrics=metrics)
    await _answered(feedback, "r1")
    first = await feedback.rate(_rating("r1", 1), SHOP)
    assert (first.prompt, first.version, first.replaced) == ("policy-qa", "1.1.0", False)
    second = await feedback.rate(_rating("r1", -1), SHOP)
    assert second.replaced
    await _answered(feedback, "r2")
    await feedback.rate(_rating("r2", 0.8), SHOP)
    assert _value(metrics, "promptrollouts_feedback_total") == 2
    assert _value(metrics, "promptrollouts_feedback_score_total") == pytest.approx(1.0 + 0 + 0.9)
    assert _value(metrics, "promptrollouts_feedback_score_retracted_total") == pytest.approx(1.0)
    # The contract's mean: (score - retracted) / count = (0 + 0.9) / 2
    mean = (
        _value(metrics, "promptrollouts_feedback_score_total")
        - _value(metrics, "promptrollouts_feedback_score_retracted_total")
    ) / _value(metrics, "promptrollouts_feedback_total")
    assert mean == pytest.approx(0.45)
    await feedback.close()
    if client is not None:
        await client.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", STORES)
@pytest.mark.asyncio
async def test_concurrent_ratings_of_one_id_are_counted_once(
    kind: str, request: pytest.FixtureRequest
) -> None:
    store, client = _store(kind, request)
    metrics = Metrics()
    feedback = Feedback(store, ttl_seconds=60, metrics=metrics)
    await _answered(feedback, "r1")
    scores = [1.0, -1.0] * 10
    results = await asyncio.gather(*(feedback.rate(_rating("r1", s), SHOP) for s in scores))
    assert sum(not r.replaced for r in results) == 1
    assert _value(metrics, "promptrollouts_feedback_total") == 1
    final = await store.fetch(build_feedback_key("shop", "r1"))
    assert final is not None and final.score is not None
    net = _value(metrics, "promptrollouts_feedback_score_total") - _value(
        metrics, "promptrollouts_feedback_score_retracted_total"
    )
    assert net == pytest.approx(normalise_score(final.score))  # exactly the rating that won
    await feedback.close()
    if client is not None:
        await client.aclose()  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_another_tenants_id_and_unknown_ids_are_not_found() -> None:
    metrics = Metrics()
    feedback = Feedback(MemoryFeedbackStore(), ttl_seconds=60, metrics=metrics)
    await _answered(feedback, "r1", SHOP)
    for caller, request_id in ((BANK, "r1"), (SHOP, "r2")):
        with pytest.raises(FeedbackNotFoundError, match="not asked by this tenant"):
            await feedback.rate(_rating(request_id, 1), caller)
    # The same id answered for another tenant neither overwrites nor reveals the first.
    await _answered(feedback, "r1", BANK)
    assert (await feedback.rate(_rating("r1", 1), BANK)).replaced is False
    assert (await feedback.rate(_rating("r1", 1), SHOP)).replaced is False
    assert _value(metrics, "promptrollouts_feedback_total") == 2


@pytest.mark.asyncio
async def test_a_key_outside_the_prompts_scope_is_forbidden_and_nothing_is_counted() -> None:
    metrics = Metrics()
    feedback = Feedback(MemoryFeedbackStore(), ttl_seconds=60, metrics=metrics)
    await _answered(feedback, "r1", SHOP)
    with pytest.raises(PermissionDeniedError):
        await feedback.rate(_rating("r1", 1), NARROW)
    assert _value(metrics, "promptrollouts_feedback_total") == 0
    assert (await feedback.rate(_rating("r1", 1), SHOP)).replaced is False


@pytest.mark.parametrize(
    "outcome",
    [Outcome.ANSWERED, Outcome.FALLBACK, Outcome.UNKNOWN, Outcome.REFUSED],
)
@pytest.mark.asyncio
async def test_every_answered_outcome_can_be_rated(outcome: Outcome) -> None:
    feedback = Feedback(MemoryFeedbackStore(), ttl_seconds=60, metrics=Metrics())
    feedback.remember("r1", _answer("r1", outcome), "shop")
    assert (await feedback.rate(_rating("r1", 1), SHOP)).request_id == "r1"


@pytest.mark.asyncio
async def test_a_rating_right_after_the_answer_waits_for_it_to_be_remembered() -> None:
    class SlowStore(MemoryFeedbackStore):
        async def remember(self, key: str, answered: Answered, ttl_seconds: float) -> bool:
            await asyncio.sleep(0.05)
            return await super().remember(key, answered, ttl_seconds)

    feedback = Feedback(SlowStore(), ttl_seconds=60, metrics=Metrics())
    feedback.remember("r1", _answer("r1"), "shop")  # no await: rated at once
    assert (await feedback.rate(_rating("r1", 1), SHOP)).replaced is False


@pytest.mark.asyncio
async def test_pii_in_comments_is_logged_redacted_and_never_raw() -> None:
    feedback = Feedback(MemoryFeedbackStore(), ttl_seconds=60, metrics=Metrics())
    await _answered(feedback, "r1")
    comment = "Wrong! Mail me at jane.doe@example.com or call +44 20 7946 0958"
    with structlog.testing.capture_logs() as events:
        await feedback.rate(_rating("r1", -1, comment), SHOP)
    (event,) = [e for e in events if e["event"] == "feedback"]
    logged = json.dumps(event, default=str)
    assert "jane.doe@example.com" not in logged and "7946" not in logged
    assert "Wrong!" in logged and event["comment_chars"] == len(comment)
    assert (event["prompt"], event["version"], event["score"]) == ("policy-qa", "1.1.0", -1)


@pytest.mark.asyncio
async def test_with_log_content_off_the_comment_is_not_logged_at_all() -> None:
    feedback = Feedback(
        MemoryFeedbackStore(), ttl_seconds=60, metrics=Metrics(), log_content=ContentMode.OFF
    )
    await _answered(feedback, "r1")
    with structlog.testing.capture_logs() as events:
        await feedback.rate(_rating("r1", 1, "the refund answer was great"), SHOP)
    (event,) = [e for e in events if e["event"] == "feedback"]
    assert "comment" not in event and "great" not in json.dumps(event, default=str)


class HungStore(MemoryFeedbackStore):
    """A store whose every call hangs, as a Redis that stopped answering (until cancelled)."""

    async def remember(self, key: str, answered: Answered, ttl_seconds: float) -> bool:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class DownStore(MemoryFeedbackStore):
    """A store that fails every call, as an unreachable Redis."""

    async def remember(self, key: str, answered: Answered, ttl_seconds: float) -> bool:
        raise FeedbackUnavailableError("feedback store: ConnectionError")


@pytest.mark.asyncio
async def test_remembering_never_waits_for_the_store_and_a_failure_is_counted() -> None:
    metrics = Metrics()
    feedback = Feedback(DownStore(), ttl_seconds=60, metrics=metrics)
    started = time.perf_counter()
    feedback.remember("r1", _answer("r1"), "shop")  # returns at once, never raises
    assert time.perf_counter() - started < 0.05
    await asyncio.sleep(0.01)
    assert metrics.registry.get_sample_value(
        "promptrollouts_feedback_remember_failures_total"
    ) == pytest.approx(1)


@pytest.mark.asyncio
async def test_a_hung_store_piles_up_at_most_max_pending_writes() -> None:
    metrics = Metrics()
    feedback = Feedback(HungStore(), ttl_seconds=60, metrics=metrics, max_pending=5)
    for n in range(50):
        feedback.remember(f"r{n}", _answer(f"r{n}"), "shop")
    await asyncio.sleep(0.01)
    failures = metrics.registry.get_sample_value("promptrollouts_feedback_remember_failures_total")
    assert failures == 45
    await asyncio.wait_for(feedback.close(), timeout=2)  # pending writes are cancelled


@pytest.mark.asyncio
async def test_an_unexpected_store_error_is_counted_not_raised() -> None:
    class BrokenStore(MemoryFeedbackStore):
        async def remember(self, key: str, answered: Answered, ttl_seconds: float) -> bool:
            raise RuntimeError("bug")

    metrics = Metrics()
    feedback = Feedback(BrokenStore(), ttl_seconds=60, metrics=metrics)
    feedback.remember("r1", _answer("r1"), "shop")
    await asyncio.sleep(0.01)
    failures = metrics.registry.get_sample_value("promptrollouts_feedback_remember_failures_total")
    assert failures == 1


# --- FEEDBACK_TTL ---------------------------------------------------------------------


def test_feedback_ttl_defaults_to_a_day_and_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().feedback_ttl == 86_400
    monkeypatch.setenv("FEEDBACK_TTL", "3600")
    assert Settings().feedback_ttl == 3600


@pytest.mark.parametrize("value", ["0", "59", "2592001", "-1", "1h", "", "1.5"])
def test_a_bad_feedback_ttl_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("FEEDBACK_TTL", value)
    with pytest.raises(ValidationError, match="feedback_ttl"):
        Settings()
