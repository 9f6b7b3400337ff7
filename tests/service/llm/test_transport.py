"""The aiohttp transport behind httpx: answers and failures as httpx reports them.

Against the real fake model over HTTP (faults injected per test) and a closed port.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.faults import Faults
from service.llm.deferred_transport import DeferredTransport, build_transport
from service.llm.transport import AiohttpTransport
from tests.support.net import free_port
from tests.support.servers import serve_in_thread

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

_CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def state() -> FakeModelState:
    return FakeModelState()


@pytest.fixture
def base_url(state: FakeModelState) -> Iterator[str]:
    with serve_in_thread(create_fake_model_app(state)) as url:
        yield url


def _client(timeout: float = 5.0) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=10, max_keepalive_connections=10)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits), timeout=httpx.Timeout(timeout, connect=2.0)
    )


async def test_a_chat_call_round_trips_status_headers_and_json(
    base_url: str, state: FakeModelState
) -> None:
    async with _client() as client:
        for _ in range(3):  # the pooled connection is reused
            response = await client.post(
                f"{base_url}/v1/chat/completions", json=_CHAT, headers={"Idempotency-Key": "k1"}
            )
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/json")
            assert response.json()["choices"][0]["message"]["content"]
    seen = state.requests[-1]
    assert seen.body == _CHAT
    assert seen.headers["idempotency-key"] == "k1"


async def test_an_error_status_comes_back_with_its_retry_after(
    base_url: str, state: FakeModelState
) -> None:
    state.set_faults(Faults(status=429, retry_after=7))
    async with _client() as client:
        response = await client.post(f"{base_url}/v1/chat/completions", json=_CHAT)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


async def test_a_reset_mid_body_is_a_transport_error_not_a_timeout(
    base_url: str, state: FakeModelState
) -> None:
    state.set_faults(Faults(reset=True))
    async with _client() as client:
        with pytest.raises(httpx.TransportError) as raised:
            await client.post(f"{base_url}/v1/chat/completions", json=_CHAT)
    assert not isinstance(raised.value, httpx.TimeoutException)


async def test_a_hung_upstream_is_a_read_timeout(base_url: str, state: FakeModelState) -> None:
    state.set_faults(Faults(hang=True))
    async with _client(timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{base_url}/v1/chat/completions", json=_CHAT)


async def test_a_closed_port_is_a_connect_error() -> None:
    async with _client() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/v1/models")


async def test_a_gzip_body_is_decoded_once_by_httpx() -> None:
    payload = json.dumps({"ok": True}).encode()

    async def zipped(_: Request) -> Response:
        return Response(
            gzip.compress(payload),
            headers={"content-encoding": "gzip", "content-type": "application/json"},
        )

    with serve_in_thread(Starlette(routes=[Route("/z", zipped)])) as url:
        async with _client() as client:
            response = await client.get(f"{url}/z")
    assert response.json() == {"ok": True}


async def test_the_deferred_transport_opens_aiohttp_on_the_first_request(base_url: str) -> None:
    limits = httpx.Limits(max_connections=10, max_keepalive_connections=10)
    assert isinstance(build_transport(True, limits), AiohttpTransport)
    deferred = build_transport(False, limits)
    assert isinstance(deferred, DeferredTransport)
    assert not deferred.opened
    async with httpx.AsyncClient(transport=deferred, timeout=5.0) as client:
        response = await client.post(f"{base_url}/v1/chat/completions", json=_CHAT)
        assert response.status_code == 200
        assert deferred.opened
    unused = DeferredTransport(limits)
    await unused.aclose()  # nothing opened: nothing to close
    assert not unused.opened


# --- post(): the same pool without httpx's models (the answer path's chat call) -------

_JSON = {"Content-Type": "application/json"}


def _transport() -> AiohttpTransport:
    return AiohttpTransport(httpx.Limits(max_connections=10, max_keepalive_connections=10))


async def test_post_round_trips_status_headers_and_body(
    base_url: str, state: FakeModelState
) -> None:
    transport = _transport()
    try:
        for _ in range(3):  # the pooled connection is reused
            raw = await transport.post(
                f"{base_url}/v1/chat/completions",
                json.dumps(_CHAT).encode(),
                {**_JSON, "Idempotency-Key": "k2"},
                5.0,
            )
            assert raw.status == 200
            assert raw.headers["Content-Type"].startswith("application/json")
            assert json.loads(raw.content)["choices"][0]["message"]["content"]
    finally:
        await transport.aclose()
    seen = state.requests[-1]
    assert seen.body == _CHAT
    assert seen.headers["idempotency-key"] == "k2"


async def test_post_keeps_an_error_status_and_its_retry_after(
    base_url: str, state: FakeModelState
) -> None:
    state.set_faults(Faults(status=429, retry_after=7))
    transport = _transport()
    try:
        raw = await transport.post(
            f"{base_url}/v1/chat/completions", json.dumps(_CHAT).encode(), _JSON, 5.0
        )
    finally:
        await transport.aclose()
    assert raw.status == 429
    assert raw.headers["retry-after"] == "7"


async def test_post_fails_with_the_httpx_exceptions(base_url: str, state: FakeModelState) -> None:
    transport = _transport()
    body = json.dumps(_CHAT).encode()
    try:
        state.set_faults(Faults(reset=True))
        with pytest.raises(httpx.TransportError) as raised:
            await transport.post(f"{base_url}/v1/chat/completions", body, _JSON, 5.0)
        assert not isinstance(raised.value, httpx.TimeoutException)
        state.set_faults(Faults(hang=True))
        with pytest.raises(httpx.ReadTimeout):
            await transport.post(f"{base_url}/v1/chat/completions", body, _JSON, 0.3)
        with pytest.raises(httpx.ConnectError):
            await transport.post(f"http://127.0.0.1:{free_port()}/v1", body, _JSON, 2.0)
    finally:
        await transport.aclose()


async def test_post_decodes_a_gzip_body() -> None:
    payload = json.dumps({"ok": True}).encode()

    async def zipped(_: Request) -> Response:
        return Response(
            gzip.compress(payload),
            headers={"content-encoding": "gzip", "content-type": "application/json"},
        )

    with serve_in_thread(Starlette(routes=[Route("/z", zipped, methods=["POST"])])) as url:
        transport = _transport()
        try:
            raw = await transport.post(f"{url}/z", b"{}", _JSON, 5.0)
        finally:
            await transport.aclose()
    assert json.loads(raw.content) == {"ok": True}
