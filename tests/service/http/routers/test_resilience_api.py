"""Resilience end to end: the service over HTTP-level tests, the fake model over real HTTP."""

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
from service.llm.resilience.caller import ResilientChatModel
from tests.support.redis import REDIS_SERVER, run_redis_server
from tests.support.servers import serve_in_thread

from .conftest import ROOT, build_settings

pytestmark = pytest.mark.integration

PRIMARY, FALLBACK = "gpt-4o-mini", "gpt-4.1-nano"
QUESTION = {"prompt": "faq", "question": "How long do refunds take?"}


def _manifest(tmp: Path, *, timeout: float = 2.0, fallbacks: list[str] | None = None) -> Path:
    """A version without retrieval whose prompt carries its own CONTEXT for the fake model."""
    base = yaml.safe_load((ROOT / "prompts" / "policy-qa-1.1.0.yaml").read_text())
    spec = base["spec"]
    spec["prompt"] = "faq"
    spec["version"] = "1.0.0"
    spec["variables"] = []
    spec.pop("retrieval")
    spec["guardrails"] = {"requireCitations": False}
    spec["template"] = {
        "system": "Answer from the context.",
        "user": "CONTEXT:\n[1] (faq.md) Refunds take five days.\n\nQUESTION: {{ question }}",
    }
    spec["model"] = {
        "name": PRIMARY,
        "timeoutSeconds": timeout,
        "fallbacks": [FALLBACK] if fallbacks is None else fallbacks,
    }
    base["metadata"]["name"] = "faq-1-0-0"
    folder = tmp / "prompts"
    folder.mkdir(exist_ok=True)
    (folder / "faq.yaml").write_text(yaml.safe_dump(base))
    return folder


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


def _client(tmp_path: Path, url: str, **overrides: Any) -> TestClient:
    manifest_options = {k: overrides.pop(k) for k in ("timeout", "fallbacks") if k in overrides}
    settings = build_settings(
        prompts_dir=_manifest(tmp_path, **manifest_options),
        corpus_dir="",
        model_base_url=f"{url}/v1",
        **(
            {
                "model_backoff_base_seconds": 0.05,
                "model_backoff_max_seconds": 0.2,
                "breaker_cool_down_seconds": 1.0,
            }
            | overrides
        ),
    )
    return TestClient(create_app(settings))


def _faults(url: str, **faults: Any) -> None:
    httpx.post(f"{url}/admin/faults", json=faults).raise_for_status()


def _calls(url: str, model: str | None = None) -> list[dict[str, Any]]:
    records = httpx.get(f"{url}/admin/requests").json()
    return [
        r
        for r in records
        if r["path"] == "/v1/chat/completions" and (model is None or r["body"]["model"] == model)
    ]


def _breaker(client: TestClient, model: str) -> BreakerState:
    chat = client.app.state.resources.chat  # type: ignore[attr-defined]
    assert isinstance(chat, ResilientChatModel)
    return chat.upstream_state(model).breaker.state


@pytest.mark.parametrize("fmt", ["seconds", "http-date"])
def test_retry_after_is_honoured_then_the_retry_succeeds(
    tmp_path: Path, fake: tuple[str, FakeModelState], fmt: str
) -> None:
    url, _ = fake
    _faults(url, status=429, retry_after=1, retry_after_format=fmt, times=1)
    # An HTTP-date has whole-second resolution: the wait can approach 2 s; the primary's
    # slice is half the deadline (a fallback follows), so allow 6.
    with _client(tmp_path, url, timeout=6.0) as client:
        started = time.monotonic()
        response = client.post("/v1/answers", json=QUESTION)
        elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "answered"
    assert elapsed >= 0.9  # never sooner than Retry-After (an HTTP-date has 1 s resolution)
    calls = _calls(url, PRIMARY)
    assert len(calls) == 2
    keys = {c["headers"]["idempotency-key"] for c in calls}
    assert len(keys) == 1 and keys != {""}


def test_retry_after_beyond_the_deadline_fails_fast_with_our_retry_after(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    url, _ = fake
    _faults(url, status=429, retry_after=30)
    with _client(tmp_path, url) as client:
        started = time.monotonic()
        response = client.post("/v1/answers", json=QUESTION)
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 1.0  # no sleeping towards a wait that cannot fit the 2 s deadline
    assert response.headers["retry-after"] == "30"
    assert response.json()["outcome"] == "unavailable"
    assert len(_calls(url, PRIMARY)) == 1 and len(_calls(url, FALLBACK)) == 1


def test_fallback_answers_when_the_primary_keeps_failing(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    url, _ = fake
    _faults(url, status=503, models=[PRIMARY])
    with _client(tmp_path, url) as client:
        response = client.post("/v1/answers", json=QUESTION)
    assert response.status_code == 200
    body = response.json()
    assert (body["outcome"], body["model"]) == ("fallback", FALLBACK)
    assert len(_calls(url, PRIMARY)) == 3  # MODEL_MAX_ATTEMPTS
    assert len(_calls(url, FALLBACK)) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried_and_leave_the_breaker_closed(
    tmp_path: Path, fake: tuple[str, FakeModelState], status: int
) -> None:
    url, _ = fake
    _faults(url, status=status)
    with _client(tmp_path, url, breaker_consecutive_failures=1) as client:
        response = client.post("/v1/answers", json=QUESTION)
        assert _breaker(client, PRIMARY) is BreakerState.CLOSED
    assert response.status_code == 502
    assert response.json()["outcome"] == "rejected"
    assert len(_calls(url)) == 1  # one call, no retry, no fallback


@pytest.mark.parametrize(
    "fault",
    [{"status": 500}, {"status": 502}, {"reset": True}, {"malformed": True}, {"hang": True}],
    ids=["500", "502", "reset", "malformed", "hang"],
)
def test_upstream_failures_are_retried_a_bounded_number_of_times(
    tmp_path: Path, fake: tuple[str, FakeModelState], fault: dict[str, Any]
) -> None:
    url, _ = fake
    _faults(url, **fault)
    with _client(
        tmp_path, url, fallbacks=[], timeout=3.0, model_attempt_timeout_seconds=0.4
    ) as client:
        started = time.monotonic()
        response = client.post("/v1/answers", json=QUESTION)
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["type"].endswith("model-unavailable")
    assert "retry-after" in response.headers
    assert len(_calls(url, PRIMARY)) == 3
    assert elapsed < 3.0


def test_breaker_opens_fails_fast_then_recovers_through_half_open(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    url, _ = fake
    _faults(url, status=503, models=[PRIMARY])
    with _client(
        tmp_path, url, breaker_consecutive_failures=3, breaker_half_open_probes=1
    ) as client:
        client.post("/v1/answers", json=QUESTION)  # 3 failed attempts open the breaker
        assert _breaker(client, PRIMARY) is BreakerState.OPEN
        before = len(_calls(url, PRIMARY))
        response = client.post("/v1/answers", json=QUESTION)
        assert response.json()["outcome"] == "fallback"
        assert len(_calls(url, PRIMARY)) == before  # open: zero upstream traffic
        httpx.delete(f"{url}/admin/faults").raise_for_status()
        time.sleep(1.1)  # cool-down
        response = client.post("/v1/answers", json=QUESTION)
        assert response.json()["outcome"] == "answered"  # the half-open probe succeeded
        assert _breaker(client, PRIMARY) is BreakerState.CLOSED


def test_every_model_failing_ends_within_the_deadline(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    url, _ = fake
    _faults(url, latency_ms=300, status=503)
    with _client(tmp_path, url, timeout=1.0) as client:
        started = time.monotonic()
        response = client.post("/v1/answers", json=QUESTION)
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 1.0 + 0.35  # the deadline, plus at most one attempt's tail
    assert response.json()["outcome"] == "unavailable"


def test_rate_limit_lets_some_through_and_answers_429_for_the_rest(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    url, _ = fake
    limits = {PRIMARY: {"rpm": 2, "tpm": 0}}
    with _client(tmp_path, url, fallbacks=[], model_limits=limits) as client:

        async def burst() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
                return await asyncio.gather(
                    *(http.post("/v1/answers", json=QUESTION) for _ in range(5))
                )

        responses = client.portal.call(burst)  # type: ignore[union-attr]
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 429, 429, 429]
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["outcome"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 30
    assert len(_calls(url)) == 2


def test_retry_budget_bounds_upstream_calls_under_a_total_outage(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    url, _ = fake
    _faults(url, status=503)
    requests = 40
    with _client(
        tmp_path,
        url,
        fallbacks=[],
        breaker_consecutive_failures=1000,
        breaker_failure_rate=1.0,
        breaker_min_calls=1000,
    ) as client:

        async def flood() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
                return await asyncio.gather(
                    *(http.post("/v1/answers", json=QUESTION) for _ in range(requests))
                )

        responses = client.portal.call(flood)  # type: ignore[union-attr]
    assert all(r.status_code == 503 for r in responses)
    assert len(_calls(url)) <= requests * 1.2 + 10 + 5


def test_client_disconnect_cancels_the_upstream_call(
    fake: tuple[str, FakeModelState], tmp_path: Path
) -> None:
    url, _ = fake
    _faults(url, latency_ms=5000)
    settings = build_settings(
        prompts_dir=_manifest(tmp_path, timeout=10.0),
        corpus_dir="",
        model_base_url=f"{url}/v1",
    )
    with serve_in_thread(create_app(settings)) as service:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{service}/v1/answers", json=QUESTION, timeout=0.5)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            calls = _calls(url)
            if calls and calls[0]["client_disconnected"]:
                break
            time.sleep(0.05)
    assert len(calls) == 1
    assert calls[0]["client_disconnected"] is True  # the service hung up on the model


# Idempotency-Key, against the in-process store and a real Redis shared by two replicas.


@pytest.fixture(scope="module", params=["memory", "redis"])
def redis_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "memory":
        yield None
        return
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (make system-deps installs it as root)")
    with run_redis_server() as url:
        yield url


def test_idempotent_replay_is_byte_for_byte_without_a_new_call(
    tmp_path: Path, fake: tuple[str, FakeModelState], redis_url: str | None
) -> None:
    url, _ = fake
    headers = {"Idempotency-Key": f"order-{time.monotonic_ns()}"}
    with _client(tmp_path, url, redis_url=redis_url) as client:
        first = client.post("/v1/answers", json=QUESTION, headers=headers)
        again = client.post("/v1/answers", json=dict(reversed(QUESTION.items())), headers=headers)
        other_body = client.post(
            "/v1/answers", json={**QUESTION, "question": "Other?"}, headers=headers
        )
        bad_key = client.post("/v1/answers", json=QUESTION, headers={"Idempotency-Key": "a\tb"})
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(_calls(url)) == 1
    assert other_body.status_code == 422
    assert other_body.json()["type"].endswith("idempotency-key-reused")
    assert bad_key.status_code == 400 and bad_key.json()["rule"] == "charset"


def test_idempotency_key_in_flight_is_409_and_expires(
    tmp_path: Path, fake: tuple[str, FakeModelState], redis_url: str | None
) -> None:
    url, _ = fake
    _faults(url, latency_ms=600, times=1)
    headers = {"Idempotency-Key": f"pay-{time.monotonic_ns()}"}
    with _client(tmp_path, url, redis_url=redis_url, idempotency_ttl_seconds=1) as client:

        async def twice() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
                first = asyncio.create_task(
                    http.post("/v1/answers", json=QUESTION, headers=headers)
                )
                await asyncio.sleep(0.2)
                second = await http.post("/v1/answers", json=QUESTION, headers=headers)
                return [await first, second]

        first, second = client.portal.call(twice)  # type: ignore[union-attr]
        assert first.status_code == 200
        assert second.status_code == 409 and second.headers["retry-after"] == "1"
        time.sleep(1.2)  # the stored response expires
        third = client.post("/v1/answers", json=QUESTION, headers=headers)
    assert third.status_code == 200 and "idempotent-replayed" not in third.headers
    assert len(_calls(url)) == 2


def test_replicas_share_idempotency_keys_through_redis(
    tmp_path: Path, fake: tuple[str, FakeModelState]
) -> None:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (make system-deps installs it as root)")
    url, _ = fake
    headers = {"Idempotency-Key": "shared-across-replicas"}
    with run_redis_server() as redis, _client(tmp_path, url, redis_url=redis) as one:
        first = one.post("/v1/answers", json=QUESTION, headers=headers)
        with _client(tmp_path, url, redis_url=redis) as two:
            replayed = two.post("/v1/answers", json=QUESTION, headers=headers)
    assert replayed.content == first.content
    assert len(_calls(url)) == 1
