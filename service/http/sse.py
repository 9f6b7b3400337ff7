"""Server-sent events of a streamed answer (``POST /v1/answers`` with ``"stream": true``).

::

    event: delta     data: {"text": "..."}                      (any number)
    event: answer    data: <the AnswerResponse, as JSON>        (the stream ended)
    event: error     data: {"request_id", "outcome", "status", "title", "detail"}

A ``: keep-alive`` comment goes out while no event is ready for `keepalive_seconds`, so
proxies do not close a quiet stream; the headers turn off caching and proxy buffering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from fastapi.responses import StreamingResponse

from service.answering.stream_events import Delta, Failed, Final, StreamEvent
from service.answering.streaming import AnswerStream
from service.http.problems import status_of

__all__ = [
    "KEEPALIVE",
    "SSE_HEADERS",
    "build_sse_response",
    "render_event",
    "send_with_keepalive",
]

#: Headers of every event stream: no caching, no proxy buffering (nginx), kept open.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
KEEPALIVE = b": keep-alive\n\n"


def _sse(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


def render_event(event: StreamEvent) -> bytes:
    """One SSE event (pure)."""
    if isinstance(event, Delta):
        return _sse("delta", json.dumps({"text": event.text}))
    if isinstance(event, Final):
        response = event.response
        return _sse("answer", response.__pydantic_serializer__.to_json(response).decode())
    status = status_of(event.error)
    return _sse(
        "error",
        json.dumps(
            {
                "request_id": event.request_id,
                "outcome": event.outcome.value,
                "status": status,
                "title": "The answer stream broke",
                "detail": str(event.error),
            }
        ),
    )


async def send_with_keepalive(
    events: AsyncIterator[bytes], keepalive_seconds: float
) -> AsyncIterator[bytes]:
    """`events`, with a keep-alive comment whenever none came for `keepalive_seconds`."""
    pending: asyncio.Task[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=keepalive_seconds)
            if not done:
                yield KEEPALIVE
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
            yield item
    finally:
        with anyio.CancelScope(shield=True):
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            closer = getattr(events, "aclose", None)
            if closer is not None:
                await closer()


def build_sse_response(
    stream: AnswerStream,
    keepalive_seconds: float,
    on_final: Callable[[Final], Awaitable[None]] | None = None,
    on_other_end: Callable[[], Awaitable[None]] | None = None,
    *,
    render: Callable[[StreamEvent], bytes] = render_event,
    prelude: bytes = b"",
) -> StreamingResponse:
    """The streaming response of `stream`; `on_final` runs before the answer event is sent,
    `on_other_end` when the stream ends any other way (failed, or abandoned). `render`
    makes each event's bytes (the OpenAI façade sends chunks), after `prelude`."""

    async def body() -> AsyncIterator[bytes]:
        finished = False
        try:
            if prelude:
                yield prelude
            async for event in stream.events():
                if isinstance(event, Final):
                    finished = True
                    if on_final is not None:
                        await on_final(event)
                yield render(event)
                if isinstance(event, Failed | Final):
                    return
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
                if not finished and on_other_end is not None:
                    await on_other_end()

    return StreamingResponse(
        send_with_keepalive(body(), keepalive_seconds),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, "X-Prompt-Version": stream.version},
    )
