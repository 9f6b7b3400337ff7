"""Shadow answers end to end: the service answers over its HTTP API with the stable version
while a canary in its shadow step answers in the background through the real fake model.

The canary's model answers with a string of its own (its name): it must never reach a
client, whatever the request (plain, repeated, with an Idempotency-Key), and the bounds
(maxShadowPerMinute, SHADOW_CONCURRENCY, X-No-Shadow, an open breaker) must hold.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.v1alpha1 import PromptVersion
from fakemodel.app import FakeModelState, create_fake_model_app
from service.app import create_app
from service.catalog.registry import PromptRegistry
from service.llm.resilience.config import ResilienceConfig
from tests.service.http.routers.conftest import build_settings
from tests.support.servers import serve_in_thread

pytestmark = pytest.mark.integration

STABLE_MODEL, CANARY_MODEL = "gpt-4o-mini", "gpt-4.1-nano"
#: What the canary's model says, and only it: the string that must never reach a client.
CANARY_STRING = f"Answer of {CANARY_MODEL}"
RESULTS = (
    "done",
    "sampled_out",
    "opted_out",
    "over_budget",
    "busy",
    "breaker_open",
    "rate_limited",
    "error",
    "cancelled",
)


def _version(version: str, model: str, status: dict[str, Any], **rollout: Any) -> PromptVersion:
    """faq `version` on `model`, without retrieval (its prompt carries its context)."""
    body = {
        "apiVersion": "promptrollouts.io/v1alpha1",
        "kind": "PromptVersion",
        "metadata": {"name": f"faq-{version.replace('.', '-')}", "namespace": "default"},
        "spec": {
            "prompt": "faq",
            "version": version,
            "owner": "tests",
            "template": {
                "system": "Answer from the context.",
                "user": "CONTEXT:\n[1] (faq.md) Refunds take five days.\n\n"
                "QUESTION: {{ question }}",
            },
            "model": {"name": model, "timeoutSeconds": 5},
            "cache": {"enabled": True, "ttlSeconds": 300},
            "rollout": {"steps": [{"shadow": {"percent": 100, "duration": "1m"}}]} | rollout,
        },
        "status": status,
    }
    return PromptVersion.model_validate(body)


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with serve_in_thread(create_fake_model_app(FakeModelState())) as url:
        yield url


@pytest.fixture(autouse=True)
def healed(fake: str) -> None:
    httpx.delete(f"{fake}/admin/faults").raise_for_status()
    httpx.delete(f"{fake}/admin/faults/models/{CANARY_MODEL}").raise_for_status()
    httpx.delete(f"{fake}/admin/requests").raise_for_status()
    replies = {"mode": "template", "template": "Answer of {model}: five days [1]"}
    httpx.post(f"{fake}/admin/replies", json=replies).raise_for_status()


def _client(tmp: Path, url: str, **settings: Any) -> TestClient:
    (tmp / "prompts").mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "prompts_dir": tmp / "prompts",
        "corpus_dir": "",
        "corpora": {},
        "model_base_url": f"{url}/v1",
        "shadow_seed": 7,
    }
    return TestClient(create_app(build_settings(**(values | settings))))


def _shadowing(client: TestClient, percent: int = 100, **rollout: Any) -> None:
    """Serve faq 1.0.0 (Stable, 100) and 1.1.0 in a shadow step of `percent`, as the
    controller writes them to status."""
    stable = _version("1.0.0", STABLE_MODEL, {"phase": "Stable", "weight": 100})
    canary = _version(
        "1.1.0",
        CANARY_MODEL,
        {"phase": "Progressing", "weight": 0, "stepIndex": 0, "stepKind": "Shadow"}
        | {"shadowPercent": percent},
        **rollout,
    )
    resources = client.app.state.resources  # type: ignore[attr-defined]
    resources.catalog.replace(PromptRegistry.from_status([stable, canary], None))


def _sample(client: TestClient, name: str, version: str = "1.1.0", **labels: str) -> float:
    registry = client.app.state.resources.metrics.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value(name, {"prompt": "faq", "version": version} | labels)
    return float(value or 0.0)


def _calls(client: TestClient) -> dict[str, float]:
    return {r: _sample(client, "promptrollouts_shadow_calls_total", result=r) for r in RESULTS}


def _settled(client: TestClient, total: int, timeout: float = 10.0) -> dict[str, float]:
    """The shadow results once `total` requests are accounted for (fails after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = _calls(client)
        if sum(counts.values()) >= total or time.monotonic() > deadline:
            return counts
        time.sleep(0.02)


def _canary_calls(url: str) -> int:
    recorded = httpx.get(f"{url}/admin/requests").json()
    return sum(1 for r in recorded if r["body"].get("model") == CANARY_MODEL)


def _ask(client: TestClient, headers: dict[str, str] | None = None) -> str:
    """The body of a 200 answer (or the test fails)."""
    body = {"prompt": "faq", "question": "How long do refunds take?"}
    response = client.post("/v1/answers", json=body, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.text


def test_the_canary_answers_in_the_background_and_never_reaches_a_client(
    tmp_path: Path, fake: str
) -> None:
    with _client(tmp_path, fake, shadow_concurrency=64) as client:
        _shadowing(client)
        bodies = [_ask(client) for _ in range(30)]
        keyed = {"Idempotency-Key": "shadow-key-1"}
        bodies += [_ask(client, keyed), _ask(client, keyed)]  # the second is replayed
        counts = _settled(client, 31)
        canary_calls = _canary_calls(fake)
        live = _sample(client, "promptrollouts_requests_total", outcome="answered")
        pinned = client.post(
            "/v1/answers",
            json={"prompt": "faq", "question": "How long do refunds take?"},
            headers={"X-Prompt-Version": "1.1.0"},
        ).json()

        assert all(CANARY_STRING not in body for body in bodies)
        assert all('"version":"1.0.0"' in body for body in bodies)
        # Every request but the replayed one was shadowed, each with a model call of its
        # own: the same question every time, so a cached shadow reply would have saved some.
        assert counts == dict.fromkeys(RESULTS, 0.0) | {"done": 31.0}
        assert canary_calls == 31
        # Shadow answers are measured as such, and never as live answers of the canary.
        answered = {"outcome": "answered", "mode": "shadow"}
        assert _sample(client, "promptrollouts_shadow_requests_total", **answered) == 31
        assert live == 0
        assert (
            _sample(
                client,
                "promptrollouts_shadow_tokens_total",
                model=CANARY_MODEL,
                direction="output",
                mode="shadow",
            )
            > 0
        )
        same = {"same": "true", "mode": "shadow"}
        assert _sample(client, "promptrollouts_shadow_citations_total", **same) == 31
        similarity = _sample(client, "promptrollouts_shadow_similarity_count", mode="shadow")
        assert similarity == 31
        assert (
            0.5 < _sample(client, "promptrollouts_shadow_similarity_sum", mode="shadow") / 31 < 1.0
        )
        # The first pinned request to the canary is a cache miss: no shadow reply was cached.
        assert pinned["version"] == "1.1.0" and pinned["cache_hit"] is False
        assert CANARY_STRING in pinned["answer"]


def test_shadow_load_is_bounded_by_max_shadow_per_minute(tmp_path: Path, fake: str) -> None:
    with _client(tmp_path, fake, shadow_concurrency=64) as client:
        _shadowing(client, maxShadowPerMinute=5)
        for _ in range(20):
            _ask(client)
        counts = _settled(client, 20)

        assert (counts["done"], counts["over_budget"]) == (5, 15)
        assert _canary_calls(fake) == 5


def test_shadow_concurrency_is_bounded_and_the_live_answer_never_waits(
    tmp_path: Path, fake: str
) -> None:
    slow = {"latency_ms": 1500.0}
    httpx.post(f"{fake}/admin/faults/models/{CANARY_MODEL}", json=slow).raise_for_status()
    with _client(tmp_path, fake, shadow_concurrency=2) as client:
        _shadowing(client)
        started = time.monotonic()
        for _ in range(10):
            _ask(client)
        elapsed = time.monotonic() - started
        counts = _settled(client, 10)

        assert elapsed < 1.5, f"10 live answers took {elapsed:.2f} s: they waited for shadows"
        assert (counts["done"], counts["busy"]) == (2, 8)


def test_x_no_shadow_and_the_percent_are_honoured(tmp_path: Path, fake: str) -> None:
    with _client(tmp_path, fake, shadow_concurrency=64) as client:
        _shadowing(client, percent=50)
        for _ in range(10):
            _ask(client, {"X-No-Shadow": "true"})
        for _ in range(40):
            _ask(client)
        counts = _settled(client, 50)

        assert counts["opted_out"] == 10
        assert counts["done"] + counts["sampled_out"] == 40
        assert 8 <= counts["done"] <= 32, counts  # 50 % of 40, seeded
        assert _canary_calls(fake) == counts["done"]


def test_a_failing_canary_never_fails_the_live_request_and_an_open_breaker_skips_it(
    tmp_path: Path, fake: str
) -> None:
    httpx.post(
        f"{fake}/admin/faults/models/{CANARY_MODEL}", json={"status": 500}
    ).raise_for_status()
    resilience = ResilienceConfig(max_attempts=1)
    with _client(tmp_path, fake, resilience=resilience, shadow_concurrency=1) as client:
        _shadowing(client)
        for _ in range(40):
            _ask(client)  # every live answer is a 200 from the stable version
            time.sleep(0.01)
        counts = _settled(client, 40)

        failed = {"outcome": "unavailable", "mode": "shadow"}
        assert _sample(client, "promptrollouts_shadow_requests_total", **failed) >= 1
        assert counts["breaker_open"] >= 1, counts
        assert counts["error"] == 0  # a failed shadow answer is an outcome, not a crash


def test_shutdown_cancels_running_shadow_answers(tmp_path: Path, fake: str) -> None:
    hang = {"latency_ms": 8000.0}
    httpx.post(f"{fake}/admin/faults/models/{CANARY_MODEL}", json=hang).raise_for_status()
    client = _client(tmp_path, fake, shadow_timeout_seconds=30)
    with client:
        _shadowing(client)
        _ask(client)
        started = time.monotonic()
    stopped = time.monotonic() - started

    assert stopped < 5, f"shutdown waited {stopped:.1f} s for a shadow answer"
    assert _calls(client)["cancelled"] == 1


def test_the_openai_facade_shadows_too_honours_x_no_shadow_and_never_shadows_a_stream(
    tmp_path: Path, fake: str
) -> None:
    with _client(tmp_path, fake, shadow_concurrency=64) as client:
        _shadowing(client, percent=100)
        ask = {"model": "prompts/faq", "messages": [{"role": "user", "content": "Refunds?"}]}
        for headers in ({}, {"X-No-Shadow": "true"}):
            completion = client.post("/v1/chat/completions", json=ask, headers=headers)
            assert completion.status_code == 200, completion.text
        streamed = client.post("/v1/answers", json={"prompt": "faq", "question": "Refunds?",
                                                     "stream": True})  # fmt: skip
        assert streamed.status_code == 200, streamed.text
        counts = _settled(client, 2)

        assert counts["done"] == 1 and counts["opted_out"] == 1, counts
        assert _canary_calls(fake) == 1
