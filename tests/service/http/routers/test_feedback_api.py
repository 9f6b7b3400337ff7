"""POST /v1/feedback over HTTP: rate the answer of a /v1/answers request id, bad input,
API keys and tenants, comments in logs and spans, and a Redis that is shared, down or hung."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.http.auth import hash_key
from tests.support.redis import run_redis_server

from .conftest import ROOT, build_settings

ASK = {"prompt": "policy-qa", "question": "How long does shipping take?"}
EMAIL = "jane.doe@example.com"
WEB_KEY, BANK_KEY, FAQ_KEY = "pr_web-key-0001", "pr_bank-key-0002", "pr_faq-key-0003"


def _settings(**overrides: Any) -> Any:
    """The test settings with only the policies corpus (policy-qa's): a quicker start-up."""
    return build_settings(corpora={"policies": ROOT / "data" / "policies"}, **overrides)


def _is_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(":" + slug)
    return body


def _answer(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = client.post("/v1/answers", json=ASK, headers=headers or {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def _metric(client: TestClient, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no sample {name} {labels}")


def test_rating_an_answer_counts_it_and_a_second_rating_replaces_the_first(
    local_client: TestClient,
) -> None:
    answer = _answer(local_client)
    labels = {"prompt": "policy-qa", "version": answer["version"]}
    before = {
        name: _metric(local_client, name, **labels)
        for name in (
            "promptrollouts_feedback_total",
            "promptrollouts_feedback_score_total",
            "promptrollouts_feedback_score_retracted_total",
        )
    }
    first = local_client.post("/v1/feedback", json={"request_id": answer["request_id"], "score": 1})
    assert first.status_code == 202, first.text
    assert first.json() == {
        "request_id": answer["request_id"],
        "prompt": "policy-qa",
        "version": answer["version"],
        "replaced": False,
    }
    second = local_client.post(
        "/v1/feedback", json={"request_id": answer["request_id"], "score": 0.2}
    )
    assert second.status_code == 202 and second.json()["replaced"] is True

    def delta(name: str) -> float:
        return _metric(local_client, name, **labels) - before[name]

    assert delta("promptrollouts_feedback_total") == 1
    assert delta("promptrollouts_feedback_score_total") == pytest.approx(1.0 + 0.6)
    assert delta("promptrollouts_feedback_score_retracted_total") == pytest.approx(1.0)


def test_unknown_ids_are_a_404_problem(local_client: TestClient) -> None:
    response = local_client.post("/v1/feedback", json={"request_id": "never-answered", "score": 1})
    body = _is_problem(response, 404, "feedback-request-not-found")
    assert "never-answered" in body["detail"]


def test_a_failed_answer_cannot_be_rated(local_client: TestClient) -> None:
    failed = local_client.post("/v1/answers", json={"prompt": "no-such-prompt", "question": "q"})
    assert failed.status_code == 404
    rating = {"request_id": failed.headers["x-request-id"], "score": 1}
    _is_problem(local_client.post("/v1/feedback", json=rating), 404, "feedback-request-not-found")


def test_a_callers_x_request_id_is_the_id_to_rate(local_client: TestClient) -> None:
    response = local_client.post("/v1/answers", json=ASK, headers={"X-Request-ID": "mine-123"})
    assert response.json()["request_id"] == "mine-123"
    rated = local_client.post("/v1/feedback", json={"request_id": "mine-123", "score": -1})
    assert rated.status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"request_id": "r1", "score": 2}', "score"),
        (b'{"request_id": "r1", "score": NaN}', "score"),
        (b'{"request_id": "r1", "score": Infinity}', "score"),
        (b'{"request_id": "r1", "score": "1"}', "score"),
        (b'{"request_id": "r1", "score": true}', "score"),
        (b'{"request_id": "r1"}', "score"),
        (b'{"score": 1}', "request_id"),
        (b'{"request_id": ["r1"], "score": 1}', "request_id"),
        (b'{"request_id": "r1 OR 1=1", "score": 1}', "request_id"),
        (b'{"request_id": "r1", "score": 1, "comment": {"a": 1}}', "comment"),
        (b'{"request_id": "r1", "score": 1, "prompt": "policy-qa"}', "prompt"),
        (b"[1, 2]", "body"),
        (b'{"request_id": "r1", "score": 1', "body"),
    ],
    ids=[
        "score-out-of-range",
        "nan",
        "infinity",
        "score-string",
        "score-bool",
        "score-missing",
        "request-id-missing",
        "request-id-list",
        "request-id-injection",
        "comment-object",
        "extra-field",
        "not-an-object",
        "truncated-json",
    ],
)
def test_bad_ratings_are_a_422_naming_the_field(
    local_client: TestClient, body: bytes, field: str
) -> None:
    response = local_client.post(
        "/v1/feedback", content=body, headers={"content-type": "application/json"}
    )
    problem = _is_problem(response, 422, "invalid-request")
    assert field in {error["field"] for error in problem["errors"]}, problem


def test_a_huge_comment_is_a_422_and_never_echoed(local_client: TestClient) -> None:
    answer = _answer(local_client)
    comment = f"{EMAIL} " + "x" * 3000
    response = local_client.post(
        "/v1/feedback", json={"request_id": answer["request_id"], "score": 1, "comment": comment}
    )
    problem = _is_problem(response, 422, "invalid-request")
    assert [e["field"] for e in problem["errors"]] == ["comment"]
    assert EMAIL not in response.text


def test_a_body_over_max_body_bytes_is_a_413(local_client: TestClient) -> None:
    comment = "x" * 2_000_000
    response = local_client.post(
        "/v1/feedback", json={"request_id": "r", "score": 1, "comment": comment}
    )
    assert response.status_code == 413


def test_a_non_json_body_is_a_415(local_client: TestClient) -> None:
    response = local_client.post(
        "/v1/feedback", content=b"request_id=r&score=1", headers={"content-type": "text/plain"}
    )
    _is_problem(response, 415, "unsupported-media-type")


def test_flooding_unknown_ids_counts_nothing(local_client: TestClient) -> None:
    before = sum(
        _metric(local_client, "promptrollouts_feedback_total", prompt="policy-qa", version=v)
        for v in ("1.0.0", "1.1.0")
    )
    for n in range(50):
        response = local_client.post("/v1/feedback", json={"request_id": f"guess-{n}", "score": -1})
        assert response.status_code == 404
    after = sum(
        _metric(local_client, "promptrollouts_feedback_total", prompt="policy-qa", version=v)
        for v in ("1.0.0", "1.1.0")
    )
    assert after == before


def test_comments_are_logged_redacted_and_never_on_spans(capfd: pytest.CaptureFixture[str]) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    comment = f"Wrong answer. I am {EMAIL}, call me on +44 20 7946 0958"
    try:
        with TestClient(create_app(_settings(), tracer_provider=provider)) as client:
            answer = _answer(client)
            capfd.readouterr()
            rating = {"request_id": answer["request_id"], "score": -1, "comment": comment}
            assert client.post("/v1/feedback", json=rating).status_code == 202
            out = capfd.readouterr().out
            metrics = client.get("/metrics").text
    finally:
        provider.shutdown()
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    (event,) = [e for e in events if e.get("event") == "feedback"]
    assert "Wrong answer." in event["comment"] and "[EMAIL]" in event["comment"]
    assert event["rated_request_id"] == answer["request_id"]
    assert EMAIL not in out and "7946" not in out
    assert EMAIL not in metrics and "Wrong answer" not in metrics
    for span in memory.get_finished_spans():
        assert "Wrong answer" not in json.dumps(dict(span.attributes or {}), default=str)
        assert EMAIL not in span.name


# --- API keys and tenants -------------------------------------------------------------


def _entry(key_id: str, key: str, tenant: str, prompts: list[str]) -> str:
    return f"- {{id: {key_id}, sha256: {hash_key(key)}, tenant: {tenant}, prompts: {prompts}}}\n"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    keys = tmp_path_factory.mktemp("keys") / "api-keys.yaml"
    keys.write_text(
        _entry("web", WEB_KEY, "shop", ["policy-qa"])
        + _entry("ops", BANK_KEY, "bank", ["'*'"])
        + _entry("faq", FAQ_KEY, "shop", ["faq"])
    )
    settings = _settings(auth_mode="api-key", api_keys_file=keys)
    with TestClient(create_app(settings)) as client:
        yield client


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_only_the_tenant_that_asked_may_rate(secured: TestClient) -> None:
    answer = _answer(secured, _bearer(WEB_KEY))
    rating = {"request_id": answer["request_id"], "score": 1}
    other = secured.post("/v1/feedback", json=rating, headers=_bearer(BANK_KEY))
    body = _is_problem(other, 404, "feedback-request-not-found")
    assert "shop" not in body["detail"] and "policy-qa" not in body["detail"]
    own = secured.post("/v1/feedback", json=rating, headers=_bearer(WEB_KEY))
    assert own.status_code == 202 and own.json()["replaced"] is False


def test_a_key_of_the_same_tenant_without_the_prompt_is_forbidden(secured: TestClient) -> None:
    answer = _answer(secured, _bearer(WEB_KEY))
    rating = {"request_id": answer["request_id"], "score": 1}
    _is_problem(
        secured.post("/v1/feedback", json=rating, headers=_bearer(FAQ_KEY)), 403, "forbidden"
    )
    assert (
        secured.post("/v1/feedback", json=rating, headers=_bearer(WEB_KEY)).json()["replaced"]
        is False
    )


def test_rating_needs_a_key(secured: TestClient) -> None:
    response = secured.post("/v1/feedback", json={"request_id": "r1", "score": 1})
    _is_problem(response, 401, "unauthenticated")
    bad = secured.post(
        "/v1/feedback", json={"request_id": "r1", "score": 1}, headers=_bearer("pr_nope")
    )
    _is_problem(bad, 401, "unauthenticated")


# --- Redis: shared, down, hung --------------------------------------------------------


def _redis_app(url: str) -> TestClient:
    return TestClient(create_app(_settings(redis_url=url)))


@pytest.mark.integration
def test_any_replica_takes_a_rating_through_redis() -> None:
    with run_redis_server() as url, _redis_app(url) as one, _redis_app(url) as two:
        answer = _answer(one)
        rating = {"request_id": answer["request_id"], "score": -1}
        first = two.post("/v1/feedback", json=rating)
        assert first.status_code == 202 and first.json()["replaced"] is False
        assert one.post("/v1/feedback", json=rating).json()["replaced"] is True


@pytest.mark.integration
def test_redis_down_never_loses_an_answer_and_rating_is_a_503() -> None:
    redis_server = run_redis_server()
    url = redis_server.__enter__()
    try:
        with _redis_app(url) as client:
            answer = _answer(client)
            rating = {"request_id": answer["request_id"], "score": 1}
            assert client.post("/v1/feedback", json=rating).status_code == 202
            redis_server.__exit__(None, None, None)  # Redis goes away under the running app
            failures = "promptrollouts_feedback_remember_failures_total"
            answer = _answer(client)  # still 200: the answer never waits for Redis
            deadline = time.monotonic() + 10
            while _metric(client, failures) < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert _metric(client, failures) == 1
            rating = {"request_id": answer["request_id"], "score": 1}
            response = client.post("/v1/feedback", json=rating)
            body = _is_problem(response, 503, "feedback-unavailable")
            assert response.headers["retry-after"] == "1"
            assert "redis://" not in body["detail"] and "127.0.0.1" not in body["detail"]
    finally:
        redis_server.__exit__(None, None, None)  # a no-op when already stopped


class HungServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers (a hung Redis)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._held.append(connection)

    def __enter__(self) -> HungServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self._held:
            connection.close()
        self._listener.close()


def test_a_hung_redis_never_delays_an_answer_and_rating_fails_within_a_second() -> None:
    with HungServer() as hung, _redis_app(hung.url) as client:
        failures = "promptrollouts_feedback_remember_failures_total"
        answer = _answer(client)
        # Remembering gives up after 1 s; the answer came back before that happened.
        assert _metric(client, failures) == 0
        started = time.monotonic()
        response = client.post(
            "/v1/feedback", json={"request_id": answer["request_id"], "score": 1}
        )
        _is_problem(response, 503, "feedback-unavailable")
        assert time.monotonic() - started < 5.0
        assert _metric(client, failures) == 1


def test_an_idempotent_answer_is_remembered_once_and_its_replay_rates_the_same_answer(
    local_client: TestClient,
) -> None:
    headers = {"Idempotency-Key": "feedback-idem-1"}
    first = local_client.post("/v1/answers", json=ASK, headers=headers)
    replay = local_client.post("/v1/answers", json=ASK, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    request_id = first.json()["request_id"]
    assert replay.json()["request_id"] == request_id
    rated = local_client.post("/v1/feedback", json={"request_id": request_id, "score": 1})
    assert rated.status_code == 202 and rated.json()["replaced"] is False
    # The replay's own X-Request-ID was never answered by the model: nothing to rate.
    replay_id = replay.headers["x-request-id"]
    assert replay_id != request_id
    again = local_client.post("/v1/feedback", json={"request_id": replay_id, "score": 1})
    _is_problem(again, 404, "feedback-request-not-found")
