"""Streamed answers end to end: the service and the fake model over real HTTP, httpx reading SSE."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry

from fakemodel.app import FakeModelState, create_fake_model_app
from service.app import create_app
from service.llm.resilience.caller import ResilientChatModel
from tests.support.servers import serve_in_thread

from .conftest import ROOT, build_settings

pytestmark = pytest.mark.integration

PRIMARY, FALLBACK = "gpt-4o-mini", "gpt-4.1-nano"
PASSAGE = "Refunds are paid back to the original card within five working days of the return."
REFUSAL = "I can't help with that."
QUESTION = "How long do refunds take?"


def _manifest(
    folder: Path, prompt: str, *, forbidden: list[str], timeout: float, retrieval: bool = False
) -> None:
    """A version whose prompt carries its own CONTEXT for the fake model; or, with
    `retrieval`, policy-qa's retrieval from the policies corpus (citations required)."""
    base = yaml.safe_load((ROOT / "prompts" / "policy-qa-1.1.0.yaml").read_text())
    spec = base["spec"]
    spec.update(prompt=prompt, version="1.0.0")
    spec["guardrails"] = {
        "requireCitations": retrieval,
        "forbiddenPhrases": forbidden,
        "refusalAnswer": REFUSAL,
    }
    if not retrieval:
        spec.update(variables=[])
        spec.pop("retrieval")
        spec["template"] = {
            "system": "Answer from the context.",
            "user": f"CONTEXT:\n[1] (faq.md) {PASSAGE}\n\nQUESTION: {{{{ question }}}}",
        }
    spec["model"] = {"name": PRIMARY, "timeoutSeconds": timeout, "fallbacks": [FALLBACK]}
    base["metadata"]["name"] = f"{prompt}-1-0-0"
    (folder / f"{prompt}.yaml").write_text(yaml.safe_dump(base))


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with serve_in_thread(create_fake_model_app(FakeModelState())) as url:
        yield url


def _settings(folder: Path, fake_url: str, *, corpora: bool = True) -> Any:
    return build_settings(
        prompts_dir=folder,
        corpora={"policies": ROOT / "data" / "policies"} if corpora else {},
        model_base_url=f"{fake_url}/v1",
        model_backoff_base_seconds=0.02,
        model_backoff_max_seconds=0.05,
    )


@pytest.fixture(scope="module")
def prompts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("prompts")
    _manifest(folder, "faq", forbidden=["wire the money"], timeout=3.0)
    _manifest(folder, "leaky", forbidden=["five working days"], timeout=3.0)
    _manifest(folder, "hasty", forbidden=[], timeout=1.0)
    _manifest(folder, "cited", forbidden=[], timeout=3.0, retrieval=True)
    return folder


@pytest.fixture(scope="module")
def service(fake: str, prompts_dir: Path) -> Iterator[tuple[str, Any]]:
    app = create_app(_settings(prompts_dir, fake))
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture(autouse=True)
def healed(fake: str) -> None:
    httpx.delete(f"{fake}/admin/faults").raise_for_status()
    httpx.delete(f"{fake}/admin/requests").raise_for_status()


def _registry(app: Any) -> CollectorRegistry:
    return app.state.resources.metrics.registry  # type: ignore[no-any-return]


def _count(app: Any, prompt: str, outcome: str | None = None) -> float:
    registry = _registry(app)
    outcomes = [outcome] if outcome else ["answered", "fallback", "unknown", "refused"]
    outcomes += [] if outcome else ["unavailable", "rate_limited", "rejected", "invalid", "error"]
    return sum(
        registry.get_sample_value(
            "promptrollouts_requests_total",
            {"prompt": prompt, "version": "1.0.0", "outcome": name},
        )
        or 0.0
        for name in outcomes
    )


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """(event, data) pairs of an event stream; comments skipped."""
    events = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if fields:
            events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


def _stream(url: str, prompt: str, **extra: Any) -> tuple[httpx.Response, list[tuple[str, Any]]]:
    body = {"prompt": prompt, "question": QUESTION, "stream": True}
    with httpx.stream("POST", f"{url}/v1/answers", json=body, timeout=10, **extra) as response:
        text = response.read().decode()
    return response, (parse_sse(text) if response.status_code == 200 else [])


def _faults(fake: str, **faults: Any) -> None:
    httpx.post(f"{fake}/admin/faults", json=faults).raise_for_status()


def _deltas(events: list[tuple[str, Any]]) -> str:
    return "".join(data["text"] for name, data in events if name == "delta")


def test_the_deltas_reassemble_the_plain_answer(service: tuple[str, Any]) -> None:
    url, app = service
    plain = httpx.post(f"{url}/v1/answers", json={"prompt": "cited", "question": QUESTION}).json()
    ttft = {"prompt": "cited", "version": "1.0.0"}
    before = _registry(app).get_sample_value(
        "promptrollouts_time_to_first_token_seconds_count", ttft
    )
    response, events = _stream(url, "cited")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    names = [name for name, _ in events]
    assert names[-1] == "answer" and names.count("answer") == 1 and names.count("delta") >= 2
    final = events[-1][1]
    assert final["outcome"] == "answered" and final["answer"] == plain["answer"]
    assert _deltas(events) == final["answer"] and "[1]" in final["answer"]
    assert final["citations"][0]["id"] and final["usage"]["output_tokens"] > 0
    after = _registry(app).get_sample_value(
        "promptrollouts_time_to_first_token_seconds_count", ttft
    )
    assert after == (before or 0) + 1


def test_failures_before_the_first_byte_are_retried_then_fall_back(
    service: tuple[str, Any], fake: str
) -> None:
    url, _ = service
    _faults(fake, status=503, models=[PRIMARY])
    response, events = _stream(url, "faq")
    assert response.status_code == 200
    assert events[-1][0] == "answer" and events[-1][1]["outcome"] == "fallback"
    calls = httpx.get(f"{fake}/admin/requests").json()
    primary = [c for c in calls if c["body"]["model"] == PRIMARY]
    assert len(primary) >= 2 and all(c["body"]["stream"] is True for c in calls)


def test_a_failure_after_the_first_byte_ends_with_an_error_event_and_is_counted(
    service: tuple[str, Any], fake: str
) -> None:
    url, app = service
    before = _count(app, "faq", "unavailable")
    _faults(fake, reset=True, token_delay_ms=30)  # paced: the first pieces arrive before the drop
    response, events = _stream(url, "faq")
    assert response.status_code == 200
    name, data = events[-1]
    assert name == "error" and data["outcome"] == "unavailable" and data["request_id"]
    assert "answer" not in [n for n, _ in events]
    assert _count(app, "faq", "unavailable") == before + 1
    # Not retried once text arrived: one call per model at most.
    assert len(httpx.get(f"{fake}/admin/requests").json()) == 1


def test_the_deadline_ends_a_slow_stream_with_an_error_event(
    service: tuple[str, Any], fake: str
) -> None:
    url, _ = service
    _faults(fake, token_delay_ms=300)  # about 5 s for the whole answer
    started = time.monotonic()
    response, events = _stream(url, "hasty")
    assert response.status_code == 200
    assert events[-1][0] == "error" and events[-1][1]["outcome"] == "unavailable"
    assert time.monotonic() - started < 3.0


def test_a_forbidden_phrase_split_across_chunks_is_never_sent(service: tuple[str, Any]) -> None:
    url, _ = service
    _, events = _stream(url, "leaky")
    shown = _deltas(events)
    assert "five working days" not in shown and "working days" not in shown
    final = events[-1][1]
    assert final["outcome"] == "refused" and final["answer"] == REFUSAL


def test_a_refusal_is_never_streamed(service: tuple[str, Any], fake: str) -> None:
    url, _ = service
    _faults(fake, refuse_rate=1.0)
    _, events = _stream(url, "faq")
    assert [name for name, _ in events] == ["answer"]
    assert events[0][1]["outcome"] == "refused" and events[0][1]["answer"] == REFUSAL


def test_an_uncited_stream_ends_unknown_with_the_empty_answer(
    service: tuple[str, Any], fake: str
) -> None:
    url, _ = service
    _, events = _stream(url, "cited")
    assert events[-1][1]["outcome"] == "answered"
    _faults(fake, uncited_rate=1.0)
    _, events = _stream(url, "cited")
    final = events[-1][1]
    assert final["outcome"] == "unknown" and final["answer"] == "Not covered by policy."
    # What the client saw: the reply's text but its held-back window; the answer replaces it.
    shown = _deltas(events)
    assert shown and "[" not in shown


def test_a_client_that_disconnects_mid_stream_is_recorded_once(
    service: tuple[str, Any], fake: str
) -> None:
    url, app = service
    _faults(fake, token_delay_ms=80)
    before = _count(app, "faq")
    errors = _count(app, "faq", "error")
    body = {"prompt": "faq", "question": QUESTION, "stream": True}
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{url}/v1/answers", json=body) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("event: delta"):
                break  # hang up after the first delta
    deadline = time.monotonic() + 5
    while _count(app, "faq") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a second record would have landed by now
    assert _count(app, "faq") == before + 1
    assert _count(app, "faq", "error") == errors + 1


def test_an_open_breaker_is_a_plain_503_problem_not_a_stream(fake: str, tmp_path: Path) -> None:
    _manifest(tmp_path, "faq", forbidden=[], timeout=3.0)
    app = create_app(_settings(tmp_path, fake, corpora=False))
    with serve_in_thread(app) as url:
        chat = app.state.resources.chat
        assert isinstance(chat, ResilientChatModel)
        for model in (PRIMARY, FALLBACK):
            chat.upstream_state(model).breaker.hold(time.monotonic(), 30.0)
        response, _ = _stream(url, "faq")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "retry-after" in response.headers
    assert httpx.get(f"{fake}/admin/requests").json() == []


def test_an_idempotent_stream_is_replayed_as_a_stream(service: tuple[str, Any]) -> None:
    url, _ = service
    headers = {"Idempotency-Key": "stream-key-0001"}
    _, first = _stream(url, "faq", headers=headers)
    replayed, again = _stream(url, "faq", headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert again[-1] == first[-1] and _deltas(again) == _deltas(first)
