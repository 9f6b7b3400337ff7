"""``POST /v1/answers`` with ``"stream": true``: the answer as server-sent events.

Idempotency-Key with a stream: the key is held while the stream runs; a stream that ends
with its ``answer`` event stores that answer (as the JSON a plain request would have
stored), and a stream that fails or is abandoned releases the key, so a retry runs again.
A replay (same key, same body, so ``"stream": true`` again) is sent as a stream of one
``delta`` (the whole answer, for answered/fallback outcomes) and the stored ``answer``
event, with ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from fastapi.responses import Response, StreamingResponse

from service.answering.outcome import Outcome
from service.answering.pipeline import AnswerService
from service.answering.schemas import AnswerRequest, AnswerResponse
from service.answering.stream_events import Delta, Final
from service.answering.streaming import AnswerStream, open_answer_stream
from service.http.auth import Caller
from service.http.feedback import Feedback
from service.http.idempotency import Idempotency
from service.http.idempotency_keys import Replay, StoredResponse
from service.http.sse import SSE_HEADERS, build_sse_response, render_event

__all__ = ["KEEPALIVE_SECONDS", "SendStream", "StreamCall", "serve_stream", "stream_answer"]

#: A keep-alive comment after this long without an event.
KEEPALIVE_SECONDS = 15.0


#: Sends an opened stream: (stream, on_final, on_other_end) -> the streaming response.
SendStream = Callable[
    [AnswerStream, Callable[[Final], Awaitable[None]], Callable[[], Awaitable[None]] | None],
    Response,
]


@dataclass(frozen=True)
class StreamCall:
    """One streamed request: what it asks, who asks, and the stores it answers through."""

    body: AnswerRequest
    raw_body: bytes
    answers: AnswerService
    idempotency: Idempotency
    feedback: Feedback
    caller: Caller
    request_id: str
    received_at: float | None
    idempotency_key: str | None
    #: The ``X-Prompt-Version`` header, part of an Idempotency-Key's fingerprint.
    pinned_version: str | None = None


async def stream_answer(call: StreamCall, keepalive_seconds: float = KEEPALIVE_SECONDS) -> Response:
    """Open the stream (errors before the first byte are the usual problems) and send it."""

    def send(
        stream: AnswerStream,
        on_final: Callable[[Final], Awaitable[None]],
        on_other_end: Callable[[], Awaitable[None]] | None,
    ) -> Response:
        return build_sse_response(stream, keepalive_seconds, on_final, on_other_end)

    return await serve_stream(call, send=send, replay=_replay)


async def serve_stream(
    call: StreamCall, *, send: SendStream, replay: Callable[[StoredResponse], Response]
) -> Response:
    """Open the answer stream and `send` it; with an Idempotency-Key, a stream that ends
    stores its answer, one that fails or is abandoned releases the key, and a repeat is
    `replay`-ed from what was stored."""
    feedback, caller, request_id = call.feedback, call.caller, call.request_id
    if call.idempotency_key is None:
        stream = await open_answer_stream(
            call.answers, call.body, request_id, secrets.token_hex(32), received_at=call.received_at
        )

        async def remember(final: Final) -> None:
            feedback.remember(request_id, final.response, caller.tenant)

        return send(stream, remember, None)
    idempotency = call.idempotency
    begun = await idempotency.begin(
        call.idempotency_key,
        scope=caller.scope,
        body=call.raw_body,
        pinned_version=call.pinned_version,
        tenant=caller.tenant,
    )
    if isinstance(begun, Replay):
        return replay(begun.response)
    try:
        stream = await open_answer_stream(
            call.answers, call.body, request_id, begun.upstream_key, received_at=call.received_at
        )
    except BaseException:
        await idempotency.release(begun)
        raise

    async def store(final: Final) -> None:
        answer = final.response
        feedback.remember(request_id, answer, caller.tenant)
        stored = StoredResponse(
            status=200,
            headers=(("content-type", "application/json"), ("x-prompt-version", answer.version)),
            body=answer.__pydantic_serializer__.to_json(answer),
        )
        await idempotency.complete(begun, stored)

    async def release() -> None:
        await idempotency.release(begun)

    return send(stream, store, release)


def _replay(stored: StoredResponse) -> Response:
    """A stored answer, sent again as a stream."""
    answer = AnswerResponse.model_validate_json(stored.body)

    async def events() -> AsyncIterator[bytes]:
        if answer.outcome in (Outcome.ANSWERED, Outcome.FALLBACK) and answer.answer:
            yield render_event(Delta(answer.answer))
        yield render_event(Final(answer))

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, "X-Prompt-Version": answer.version, "Idempotent-Replayed": "true"},
    )
