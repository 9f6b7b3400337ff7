"""The chat call without httpx's models (tracing off) against the same call through httpx.

Both go to the real fake model over HTTP; what it receives, what comes back and how
failures are reported must be the same. With tracing on, the call goes through httpx
(whose instrumentation records the client span).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from opentelemetry.trace import NoOpTracer

from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.faults import Faults
from prompting.rendering import Message
from service.errors import UpstreamError
from service.llm.chat import ChatRequest, ChatResponse, ResponseFormat
from service.llm.openai_chat import OpenAIChatModel
from service.llm.transport import AiohttpTransport
from service.telemetry.spans import Tracing
from tests.support.net import free_port
from tests.support.servers import serve_in_thread

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

_FORMAT = ResponseFormat("answer", {"type": "object"})


def _request(**overrides: object) -> ChatRequest:
    fields: dict[str, object] = {
        "model": "gpt-4o-mini",
        "messages": [Message("system", "Be brief. ünïcode ✓"), Message("user", "Refund?")],
        "temperature": 0.2,
        "max_tokens": 64,
        "timeout_seconds": 5.0,
        "question": "Refund?",
        "user": "u-1",
        "idempotency_key": "idem-7",
        "response_format": None,
    }
    return ChatRequest(**(fields | overrides))  # type: ignore[arg-type]


@pytest.fixture
def state() -> FakeModelState:
    return FakeModelState()


@pytest.fixture
def base_url(state: FakeModelState) -> Iterator[str]:
    with serve_in_thread(create_fake_model_app(state)) as url:
        yield f"{url}/v1"


class Upstream:
    """One pooled client, a model on the direct path, one through httpx, and what httpx sent."""

    def __init__(self, base_url: str) -> None:
        limits = httpx.Limits(max_connections=10, max_keepalive_connections=10)
        self.transport = AiohttpTransport(limits)
        self.through_httpx = 0

        async def count(_: httpx.Request) -> None:
            self.through_httpx += 1

        self.http = httpx.AsyncClient(
            transport=self.transport,
            timeout=httpx.Timeout(30.0, connect=5.0),
            event_hooks={"request": [count]},
        )
        self.tracing = Tracing()
        self.direct = OpenAIChatModel(
            self.http, base_url, "sk-test", tracing=self.tracing, direct=self.transport
        )
        self.plain = OpenAIChatModel(self.http, base_url, "sk-test", tracing=self.tracing)


@pytest_asyncio.fixture
async def upstream(base_url: str) -> AsyncIterator[Upstream]:
    made = Upstream(base_url)
    async with made.http:
        yield made


async def _both(upstream: Upstream, request: ChatRequest) -> list[ChatResponse | UpstreamError]:
    results: list[ChatResponse | UpstreamError] = []
    for model in (upstream.plain, upstream.direct):
        try:
            results.append(await model.complete(request))
        except UpstreamError as error:
            results.append(error)
    return results


async def test_the_upstream_receives_the_same_request_either_way(
    upstream: Upstream, state: FakeModelState
) -> None:
    for request in (_request(), _request(response_format=_FORMAT, idempotency_key=None)):
        via_httpx, direct = await _both(upstream, request)
        assert via_httpx == direct
        first, second = state.requests[-2:]
        assert first.body == second.body
        assert first.headers == second.headers
    assert upstream.through_httpx == 2  # the direct calls never went through httpx
    assert state.requests[-1].headers["authorization"] == "Bearer sk-test"
    assert state.requests[-1].headers["content-type"] == "application/json"


async def test_failures_are_reported_the_same_either_way(
    upstream: Upstream, state: FakeModelState
) -> None:
    state.set_faults(Faults(status=503, retry_after=4))
    via_httpx, direct = await _both(upstream, _request())
    assert isinstance(via_httpx, UpstreamError)
    assert isinstance(direct, UpstreamError)
    assert (direct.kind, direct.status, direct.retry_after) == ("status", 503, 4.0)
    assert (via_httpx.kind, via_httpx.status, via_httpx.retry_after) == ("status", 503, 4.0)
    for fault, kind in ((Faults(reset=True), "reset"), (Faults(hang=True), "timeout")):
        state.set_faults(fault)
        results = await _both(upstream, _request(timeout_seconds=0.3))
        assert [getattr(r, "kind", None) for r in results] == [kind, kind]


async def test_a_closed_port_is_a_connect_failure_either_way() -> None:
    upstream = Upstream(f"http://127.0.0.1:{free_port()}/v1")
    async with upstream.http:
        results = await _both(upstream, _request())
    assert [getattr(r, "kind", None) for r in results] == ["connect", "connect"]


async def test_with_tracing_on_the_call_goes_through_httpx(upstream: Upstream) -> None:
    upstream.tracing.switch_on(NoOpTracer(), capture_content=False)
    await upstream.direct.complete(_request())
    assert upstream.through_httpx == 1
    upstream.tracing.switch_off()
    await upstream.direct.complete(_request())
    assert upstream.through_httpx == 1
