"""A streamed answer as OpenAI ``chat.completion.chunk`` events, for the façade (pure).

::

    build_role_chunk            {"choices": [{"delta": {"role": "assistant", "content": ""}}]}
    build_event_chunks(Delta)   one content chunk
    build_event_chunks(Final)   the last chunk: finish_reason ("content_filter" when refused,
                                else "stop") and the ``prompt_rollouts`` extension (version,
                                outcome, citations, request_id, and the final ``answer``,
                                which replaces the streamed text when the outcome is not
                                answered/fallback); with ``include_usage`` a usage chunk;
                                then ``[DONE]``
    build_event_chunks(Failed)  an OpenAI error object (``{"error": {...}}``), no [DONE]:
                                the openai SDK raises it as an APIError

Each item is a JSON object for ``data: ...`` or the string ``[DONE]``;
:func:`render_chunk_event` makes the SSE bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from service.answering.outcome import Outcome
from service.answering.stream_events import Delta, Failed, Final, StreamEvent
from service.http.problems import status_of

__all__ = ["DONE", "ChunkContext", "build_event_chunks", "build_role_chunk", "render_chunk_event"]

DONE = "[DONE]"


@dataclass(frozen=True)
class ChunkContext:
    """What every chunk of one completion repeats."""

    completion_id: str
    created: int
    #: ``prompts/<prompt>@<version>``.
    model: str
    include_usage: bool = False


def _chunk(context: ChunkContext, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": context.completion_id,
        "object": "chat.completion.chunk",
        "created": context.created,
        "model": context.model,
        "choices": choices,
    }


def build_role_chunk(context: ChunkContext) -> dict[str, Any]:
    """The first chunk: the assistant role, no text yet."""
    delta = {"role": "assistant", "content": ""}
    return _chunk(context, [{"index": 0, "delta": delta, "finish_reason": None}])


def build_event_chunks(event: StreamEvent, context: ChunkContext) -> list[dict[str, Any] | str]:
    """The chunks (and ``[DONE]``) one stream event becomes."""
    if isinstance(event, Delta):
        delta = {"content": event.text}
        return [_chunk(context, [{"index": 0, "delta": delta, "finish_reason": None}])]
    if isinstance(event, Final):
        response = event.response
        finish = "content_filter" if response.outcome is Outcome.REFUSED else "stop"
        last = _chunk(context, [{"index": 0, "delta": {}, "finish_reason": finish}])
        last["prompt_rollouts"] = {
            "version": response.version,
            "outcome": response.outcome.value,
            "citations": [c.model_dump() for c in response.citations],
            "request_id": response.request_id,
            "answer": response.answer,
        }
        items: list[dict[str, Any] | str] = [last]
        if context.include_usage:
            usage = response.usage
            final = _chunk(context, [])
            final["usage"] = {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
            }
            items.append(final)
        items.append(DONE)
        return items
    return [_error(event)]


def _error(event: Failed) -> dict[str, Any]:
    status = status_of(event.error)
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {
        "error": {
            "message": str(event.error),
            "type": kind,
            "code": event.outcome.value,
            "request_id": event.request_id,
        }
    }


def render_chunk_event(item: dict[str, Any] | str) -> bytes:
    """``data: ...`` for one chunk or ``[DONE]``."""
    data = item if isinstance(item, str) else json.dumps(item)
    return f"data: {data}\n\n".encode()
