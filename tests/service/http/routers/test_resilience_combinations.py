"""Resilience under combined faults, over real HTTP to the fault-injecting fake model.

429s with a touchy breaker under concurrency, a hung primary with a healthy fallback
under concurrency, a long Retry-After then recovery, and a deadline that covers
retrieval as well as the model call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from fakemodel.app import FakeModelState, create_fake_model_app
from service.app import create_app
from service.llm.resilience.breaker import BreakerState
from tests.support.servers import serve_in_thread

from .conftest import ROOT, build_settings
from .test_resilience_api import FALLBACK, PRIMARY, QUESTION, _breaker, _calls, _client, _faults

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, FakeModelState]]:
    state = FakeModelState()
    with serve_in_thread(create_fake_model_app(state)) as url:
        yield url, state


@pytest.fixture(autouse=True)
def healed(fake: tuple[str, FakeModelState]) -> None:
    url, _ = fake
    httpx.delete(f"{url}/admin/faults").raise_for_status()
    httpx.delete(f"{url}/admin/requests").raise_for_status()


def _concurrently(
    client: TestClient, requests: int, concurrency: int, body: dict[str, Any] | None = None
) -> list[tuple[httpx.Response, float]]:
    async def fire() -> list[tuple[httpx.Response, float]]:
        gate = asyncio.Semaphore(concurrency)
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://svc", timeout=60
        ) as http:

            async def one() -> tuple[httpx.Response, float]:
                async with gate:
                    started = time.monotonic()
                    response = await http.post("/v1/answers", json=body or QUESTION)
                    return response, time.monotonic() - started

            return await asyncio.gather(*(one() for _ in range(requests)))

    return client.portal.call(fire)  # type: ignore[union-attr]


def test_half_the_calls_throttled_with_a_touchy_breaker_under_concurrency(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    url, _ = fake
    _faults(url, status=429, retry_after=1, error_rate=0.5)
    with _client(
        tmp_path,
        url,
        timeout=10.0,
        fallbacks=[],
        breaker_consecutive_failures=2,
        breaker_min_calls=4,
        breaker_failure_rate=0.25,
    ) as client:
        results = _concurrently(client, 24, 8)
        assert _breaker(client, PRIMARY) is BreakerState.CLOSED
        metrics = client.get("/metrics").text
    throttled = sum(1 for c in _calls(url) if c["fault"] == "status:429")
    assert throttled >= 6, "the fault throttled a real share of the calls"
    assert [r.status_code for r, _ in results] == [200] * 24
    assert all(seconds < 10.0 for _, seconds in results)
    assert f'promptrollouts_upstream_throttled_total{{model="{PRIMARY}"}} {throttled}.0' in metrics


def test_the_same_breaker_does_open_on_real_failures(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    """The control: the touchy breaker of the test above is not simply switched off."""
    url, _ = fake
    _faults(url, status=503, error_rate=0.5)
    with _client(
        tmp_path, url, fallbacks=[], breaker_consecutive_failures=2, breaker_min_calls=4
    ) as client:
        _concurrently(client, 12, 4)
        assert _breaker(client, PRIMARY) is BreakerState.OPEN


def test_hung_primary_answers_through_the_fallback_within_the_deadline_under_concurrency(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    url, _ = fake
    _faults(url, hang=True, models=[PRIMARY])
    deadline = 4.0
    with _client(tmp_path, url, timeout=deadline, breaker_cool_down_seconds=60.0) as client:
        results = _concurrently(client, 12, 6)
        assert _breaker(client, PRIMARY) is BreakerState.OPEN
    assert [r.json()["outcome"] for r, _ in results] == ["fallback"] * 12
    assert all(r.json()["model"] == FALLBACK for r, _ in results)
    # Half the deadline for the hung primary, then the fallback: well within 4 s.
    assert max(seconds for _, seconds in results) < deadline * 0.5 + 1.0
    assert len(_calls(url, PRIMARY)) <= 6, "the breaker stopped calls to the hung model"


def test_retry_after_600_is_passed_on_not_the_cool_down(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    url, _ = fake
    _faults(url, status=429, retry_after=600, models=[PRIMARY])
    with _client(tmp_path, url, fallbacks=[]) as client:
        started = time.monotonic()
        first = client.post("/v1/answers", json=QUESTION)
        second = client.post("/v1/answers", json=QUESTION)
        elapsed = time.monotonic() - started
        assert _breaker(client, PRIMARY) is BreakerState.OPEN
    assert (first.status_code, second.status_code) == (503, 503)
    assert elapsed < 1.0, "no sleeping towards a 600 s wait"
    assert first.headers["retry-after"] == "600"
    assert 595 <= int(second.headers["retry-after"]) <= 600, "the upstream's wait, not 1 s"
    assert second.json()["outcome"] == "unavailable"
    assert len(_calls(url, PRIMARY)) == 1, "a paused model gets no traffic"


@pytest.mark.parametrize("asked", [1_000_000_000, 7200])
def test_huge_retry_after_is_capped(
    tmp_path: Path, fake: tuple[str, FakeModelState], asked: int
) -> None:
    url, _ = fake
    _faults(url, status=503, retry_after=asked, models=[PRIMARY])
    with _client(tmp_path, url, fallbacks=[]) as client:
        response = client.post("/v1/answers", json=QUESTION)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3600"


def test_after_a_capped_pause_the_model_recovers(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    url, _ = fake
    _faults(url, status=429, retry_after=600, retry_after_format="http-date", models=[PRIMARY])
    with _client(
        tmp_path,
        url,
        fallbacks=[],
        timeout=1.0,
        model_retry_after_max_seconds=2,
        breaker_half_open_probes=1,
    ) as client:
        paused = client.post("/v1/answers", json=QUESTION)
        assert paused.headers["retry-after"] == "2"
        httpx.delete(f"{url}/admin/faults").raise_for_status()
        still = client.post("/v1/answers", json=QUESTION)
        time.sleep(2.1)
        recovered = client.post("/v1/answers", json=QUESTION)
        assert _breaker(client, PRIMARY) is BreakerState.CLOSED
    assert still.status_code == 503
    assert (recovered.status_code, recovered.json()["outcome"]) == (200, "answered")
    assert len(_calls(url, PRIMARY)) == 2


def _retrieval_manifest(tmp: Path, timeout: float) -> Path:
    base = yaml.safe_load((ROOT / "prompts" / "policy-qa-1.1.0.yaml").read_text())
    base["spec"]["model"]["timeoutSeconds"] = timeout
    folder = tmp / "prompts"
    folder.mkdir(exist_ok=True)
    (folder / "policy-qa.yaml").write_text(yaml.safe_dump(base))
    return folder


def test_the_deadline_covers_retrieval(tmp_path: Path, fake: tuple[str, FakeModelState]) -> None:
    url, _ = fake
    settings = build_settings(
        prompts_dir=_retrieval_manifest(tmp_path, timeout=1.0),
        model_base_url=f"{url}/v1",
        embedding_base_url=f"{url}/v1",
    )
    question = {"prompt": "policy-qa", "question": "How long do refunds take?"}
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/answers", json=question).status_code == 200
        _faults(url, latency_ms=3000, endpoints=["embeddings"])
        chat_calls = len(_calls(url))
        started = time.monotonic()
        # Another question: a repeated one takes its embedding from the query cache.
        other = {**question, "question": "Can I get a refund on a digital item?"}
        response = client.post("/v1/answers", json=other)
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["type"].endswith("deadline-exceeded")
    assert response.json()["outcome"] == "unavailable"
    assert response.headers["retry-after"] == "1"
    assert elapsed < 1.5, "the 1 s deadline ended the slow embedding call"
    assert len(_calls(url)) == chat_calls, "no model call once the deadline has passed"


def test_time_spent_queueing_counts_against_the_deadline(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    """A request that waited 5 s before the app saw it has no time left on a 2 s deadline."""
    url, _ = fake
    with _client(tmp_path, url, timeout=2.0) as client:
        app = client.app

        async def queued_for_5s(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("state", {})["received_at"] = time.monotonic() - 5.0
            await app(scope, receive, send)

        async def post() -> httpx.Response:
            transport = httpx.ASGITransport(app=queued_for_5s)
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
                return await http.post("/v1/answers", json=QUESTION)

        late = client.portal.call(post)  # type: ignore[union-attr]
        on_time = client.post("/v1/answers", json=QUESTION)
    assert late.status_code == 503
    assert late.json()["type"].endswith("deadline-exceeded")
    assert on_time.status_code == 200
    assert len(_calls(url)) == 1, "only the request on time reached the model"
