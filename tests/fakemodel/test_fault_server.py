"""Fault injection over real HTTP: what clients (httpx, the openai SDK) see, and the records."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import openai
import pytest

from fakemodel.answers import build_embedding
from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.faults import Faults
from tests.support.servers import serve_in_thread

pytestmark = pytest.mark.integration

MESSAGES = [{"role": "user", "content": "CONTEXT:\n[1] (travel.md) Taxis are covered.\n"}]


@pytest.fixture
def state() -> FakeModelState:
    return FakeModelState(seed=7)


@pytest.fixture
def base_url(state: FakeModelState) -> Iterator[str]:
    with serve_in_thread(create_fake_model_app(state)) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        yield http


def _chat(client: httpx.Client, model: str = "gpt-4o-mini", **kwargs: Any) -> httpx.Response:
    return client.post(
        "/v1/chat/completions", json={"model": model, "messages": MESSAGES}, **kwargs
    )


def _embed(client: httpx.Client, model: str | None = "fake-embedding") -> httpx.Response:
    body: dict[str, Any] = {"input": "taxi receipts"}
    if model is not None:
        body["model"] = model
    return client.post("/v1/embeddings", json=body)


def _set_faults(client: httpx.Client, **raw: Any) -> None:
    response = client.post("/admin/faults", json=raw)
    assert response.status_code == 200, response.text


def _records(client: httpx.Client) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = client.get("/admin/requests").json()
    return records


def _wait_for(predicate: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- error statuses ---------------------------------------------------------------------------


def test_429_with_retry_after_seconds(client: httpx.Client) -> None:
    _set_faults(client, status=429, retry_after=2.5)

    response = _chat(client)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["error"] == {
        "message": "Injected fault: 429 Too Many Requests",
        "type": "requests",
        "code": "rate_limit_exceeded",
    }
    [record] = _records(client)
    assert (record["response_status"], record["fault"]) == (429, "status:429")
    assert record["client_disconnected"] is False


def test_429_with_retry_after_http_date(client: httpx.Client) -> None:
    _set_faults(client, status=429, retry_after=30, retry_after_format="http-date")
    before = datetime.now(UTC)

    response = _chat(client)

    assert response.status_code == 429
    retry_at = parsedate_to_datetime(response.headers["retry-after"])
    assert before + timedelta(seconds=29) <= retry_at <= datetime.now(UTC) + timedelta(seconds=31)


@pytest.mark.parametrize(
    ("raw", "media_type", "check"),
    [
        pytest.param(
            {"status": 503},
            "application/json",
            lambda r: r.json()["error"]["type"] == "server_error",
            id="503-openai",
        ),
        pytest.param(
            {"status": 502, "error_body": "html"},
            "text/html; charset=utf-8",
            lambda r: "<h1>502 Bad Gateway</h1>" in r.text,
            id="502-html",
        ),
        pytest.param(
            {"status": 500, "error_body": "empty"}, None, lambda r: r.content == b"", id="500-empty"
        ),
    ],
)
@pytest.mark.parametrize("call", [_chat, _embed], ids=["chat", "embeddings"])
def test_server_errors(
    client: httpx.Client,
    raw: dict[str, Any],
    media_type: str | None,
    check: Callable[[httpx.Response], bool],
    call: Callable[[httpx.Client], httpx.Response],
) -> None:
    _set_faults(client, **raw)

    response = call(client)

    assert response.status_code == raw["status"]
    assert response.headers.get("content-type") == media_type
    assert "retry-after" not in response.headers
    assert check(response)


def _statuses(client: httpx.Client, count: int) -> list[int]:
    return [_chat(client).status_code for _ in range(count)]


def test_error_rate_is_close_and_reproducible_with_the_seed(
    client: httpx.Client, state: FakeModelState
) -> None:
    _set_faults(client, status=500, error_rate=0.5)
    first = _statuses(client, 200)
    _set_faults(client, status=500, error_rate=0.5)  # setting faults restarts the seeded rolls
    again = _statuses(client, 200)
    state.seed = 8
    _set_faults(client, status=500, error_rate=0.5)
    other_seed = _statuses(client, 200)

    assert set(first) == {200, 500}
    assert 70 <= first.count(500) <= 130
    assert again == first
    assert other_seed != first


def test_times_fails_exactly_that_often_then_heals(client: httpx.Client) -> None:
    _set_faults(client, status=503, times=2)

    first = _chat(client).status_code
    standing = client.get("/admin/faults").json()
    rest = _statuses(client, 4)

    assert [first, *rest] == [503, 503, 200, 200, 200]
    assert (standing["status"], standing["times"]) == (503, 1)
    assert client.get("/admin/faults").json() == Faults().model_dump()


def test_models_filter_affects_only_that_model(client: httpx.Client) -> None:
    _set_faults(client, status=429, models=["gpt-4.1-nano"])

    assert _chat(client, "gpt-4.1-nano").status_code == 429
    assert _chat(client, "gpt-4o-mini").status_code == 200
    assert _embed(client, model=None).status_code == 200
    assert [r["fault"] for r in _records(client)] == ["status:429", None, None]


def test_endpoints_filter_affects_only_that_endpoint(client: httpx.Client) -> None:
    _set_faults(client, status=503, endpoints=["embeddings"])

    assert _chat(client).status_code == 200
    assert _embed(client).status_code == 503


def test_faults_apply_before_the_unknown_model_check(client: httpx.Client) -> None:
    _set_faults(client, status=503)

    assert _chat(client, "gpt-9").status_code == 503


# --- latency, hang, reset, malformed ----------------------------------------------------------


@pytest.mark.parametrize("call", [_chat, _embed], ids=["chat", "embeddings"])
def test_latency_delays_the_answer(
    client: httpx.Client, call: Callable[[httpx.Client], httpx.Response]
) -> None:
    _set_faults(client, latency_ms=300, jitter_ms=100)

    started = time.monotonic()
    response = call(client)
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= 0.3
    [record] = _records(client)
    assert (record["response_status"], record["fault"]) == (200, "latency")


@pytest.mark.parametrize(
    ("raw", "fault"),
    [
        pytest.param({"hang": True}, "hang", id="hang"),
        pytest.param({"latency_ms": 60_000}, "latency", id="long-latency"),
    ],
)
def test_client_that_gives_up_is_recorded(
    client: httpx.Client, raw: dict[str, Any], fault: str
) -> None:
    _set_faults(client, **raw)

    with pytest.raises(httpx.ReadTimeout):
        _chat(client, timeout=0.3)

    assert _wait_for(lambda: _records(client)[0]["client_disconnected"])
    [record] = _records(client)
    assert (record["response_status"], record["fault"]) == (None, fault)


def test_shutdown_finishes_while_a_client_waits_on_a_hang() -> None:
    state = FakeModelState(faults=Faults(hang=True))
    request = (
        b"POST /v1/embeddings HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b'Content-Length: 14\r\n\r\n{"input": "x"}'
    )
    with serve_in_thread(create_fake_model_app(state)) as url:
        host, port = url.removeprefix("http://").split(":")
        waiting = socket.create_connection((host, int(port)), timeout=5)
        waiting.sendall(request)
        assert _wait_for(lambda: len(state.requests) == 1)
        stopping = time.monotonic()
    shutdown_seconds = time.monotonic() - stopping
    waiting.close()

    assert shutdown_seconds < 5
    assert state.requests[0].fault == "hang"
    assert state.requests[0].response_status is None


@pytest.mark.parametrize("call", [_chat, _embed], ids=["chat", "embeddings"])
def test_reset_drops_the_connection_mid_body(
    client: httpx.Client, call: Callable[[httpx.Client], httpx.Response]
) -> None:
    _set_faults(client, reset=True, times=1)

    with pytest.raises(httpx.TransportError):
        call(client)

    assert call(client).status_code == 200
    first, second = _records(client)
    assert (first["response_status"], first["fault"]) == (None, "reset")
    assert (second["response_status"], second["fault"]) == (200, None)


@pytest.mark.parametrize("call", [_chat, _embed], ids=["chat", "embeddings"])
def test_malformed_is_a_200_with_invalid_json(
    client: httpx.Client, call: Callable[[httpx.Client], httpx.Response]
) -> None:
    _set_faults(client, malformed=True)

    response = call(client)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


# --- /admin/faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"status": 200}, id="status-not-an-error"),
        pytest.param({"status": 429, "hang": True}, id="two-failures"),
        pytest.param({"error_rate": 2, "status": 500}, id="rate-above-1"),
        pytest.param({"retry_after": 5}, id="retry-after-without-status"),
        pytest.param({"latency": 5}, id="unknown-field"),
        pytest.param({"models": "gpt-4o-mini"}, id="models-not-a-list"),
    ],
)
def test_invalid_faults_are_a_422_and_change_nothing(
    client: httpx.Client, raw: dict[str, Any]
) -> None:
    _set_faults(client, status=503)

    response = client.post("/admin/faults", json=raw)

    assert response.status_code == 422
    assert response.json()["detail"]
    assert client.get("/admin/faults").json()["status"] == 503


def test_get_returns_the_standing_faults(client: httpx.Client) -> None:
    raw = {"status": 429, "retry_after": 1.0, "models": ["gpt-4o-mini"], "endpoints": ["chat"]}

    posted = client.post("/admin/faults", json=raw).json()

    assert posted == client.get("/admin/faults").json()
    assert posted == Faults.model_validate(raw).model_dump()


def test_delete_heals(client: httpx.Client) -> None:
    _set_faults(client, status=503, latency_ms=200)
    assert _chat(client).status_code == 503

    assert client.delete("/admin/faults").status_code == 204

    assert client.get("/admin/faults").json() == Faults().model_dump()
    assert _chat(client).status_code == 200
    assert _records(client)[-1]["fault"] is None


def test_records_stay_json_and_bounded(client: httpx.Client, state: FakeModelState) -> None:
    state.max_recorded = 3
    _set_faults(client, status=500, error_rate=0.5)
    for _ in range(5):
        _chat(client)

    records = _records(client)

    assert len(records) == 3
    assert {type(r["client_disconnected"]) for r in records} == {bool}
    assert {r["response_status"] for r in records} <= {200, 500}


# --- the official openai SDK ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_openai_sdk_calls_and_sees_rate_limits(base_url: str, state: FakeModelState) -> None:
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0) as sdk:
        completion = await sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": MESSAGES[0]["content"]}]
        )
        embedding = await sdk.embeddings.create(model="fake-embedding", input="taxi receipts")
        state.set_faults(Faults(status=429, retry_after=1))
        with pytest.raises(openai.RateLimitError) as raised:
            await sdk.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )

    assert completion.choices[0].message.content == "Taxis are covered. [1]"
    assert embedding.data[0].embedding == build_embedding("taxi receipts", 64)
    assert raised.value.status_code == 429
    assert raised.value.response.headers["retry-after"] == "1"
    assert raised.value.code == "rate_limit_exceeded"
