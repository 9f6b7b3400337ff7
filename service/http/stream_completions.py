"""``POST /v1/chat/completions`` with ``"stream": true``: ``chat.completion.chunk`` events.

The same stream as ``/v1/answers`` (:func:`service.answering.streaming.open_answer_stream`):
errors before the first byte are the usual OpenAI error objects with their HTTP status;
after it, a failure is an ``{"error": ...}`` event (the ``openai`` SDK raises it). Chunks
are made by :mod:`service.http.openai_chunks`.

Idempotency-Key with a stream works as on ``/v1/answers``: a stream that ends stores its
answer, a failed or abandoned one releases the key, and a replay is sent as the role
chunk, one content chunk (answered/fallback outcomes), the last chunk and ``[DONE]``, with
``Idempotent-Replayed: true``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.responses import Response, StreamingResponse

from service.answering.outcome import Outcome
from service.answering.schemas import AnswerResponse
from service.answering.stream_events import Delta, Final, StreamEvent
from service.answering.streaming import AnswerStream
from service.http.idempotency_keys import StoredResponse
from service.http.openai_chunks import (
    ChunkContext,
    build_event_chunks,
    build_role_chunk,
    render_chunk_event,
)
from service.http.sse import SSE_HEADERS, build_sse_response
from service.http.stream_answers import KEEPALIVE_SECONDS, StreamCall, serve_stream

__all__ = ["stream_completion"]


def _context(request_id: str, prompt: str, version: str, include_usage: bool) -> ChunkContext:
    return ChunkContext(
        completion_id=f"chatcmpl-{request_id}",
        created=int(time.time()),
        model=f"prompts/{prompt}@{version}",
        include_usage=include_usage,
    )


def _render(context: ChunkContext) -> Callable[[StreamEvent], bytes]:
    def render(event: StreamEvent) -> bytes:
        return b"".join(render_chunk_event(i) for i in build_event_chunks(event, context))

    return render


async def stream_completion(
    call: StreamCall, *, include_usage: bool, keepalive_seconds: float = KEEPALIVE_SECONDS
) -> Response:
    """Open the stream (errors before the first byte are the usual errors) and send chunks."""

    def send(
        stream: AnswerStream,
        on_final: Callable[[Final], Awaitable[None]],
        on_other_end: Callable[[], Awaitable[None]] | None,
    ) -> Response:
        return _send(
            stream, call.body.prompt, include_usage, keepalive_seconds, on_final, on_other_end
        )

    return await serve_stream(
        call, send=send, replay=lambda stored: _replay(stored, call.request_id, include_usage)
    )


def _send(
    stream: AnswerStream,
    prompt: str,
    include_usage: bool,
    keepalive_seconds: float,
    on_final: Callable[[Final], Awaitable[None]],
    on_other_end: Callable[[], Awaitable[None]] | None,
) -> StreamingResponse:
    context = _context(stream.request_id, prompt, stream.version, include_usage)
    return build_sse_response(
        stream,
        keepalive_seconds,
        on_final,
        on_other_end,
        render=_render(context),
        prelude=render_chunk_event(build_role_chunk(context)),
    )


def _replay(stored: StoredResponse, request_id: str, include_usage: bool) -> Response:
    """A stored answer, sent again as chunks."""
    answer = AnswerResponse.model_validate_json(stored.body)
    context = _context(answer.request_id, answer.prompt, answer.version, include_usage)
    render = _render(context)

    async def events() -> AsyncIterator[bytes]:
        yield render_chunk_event(build_role_chunk(context))
        if answer.outcome in (Outcome.ANSWERED, Outcome.FALLBACK) and answer.answer:
            yield render(Delta(answer.answer))
        yield render(Final(answer))

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, "X-Prompt-Version": answer.version, "Idempotent-Replayed": "true"},
    )
