"""Streamed chat answers (``stream: true``): OpenAI ``chat.completion.chunk`` events.

The answer is sent token by token (a token: a word with the whitespace before it), as
OpenAI streams: a first chunk with the assistant role, one chunk per token, a last chunk
with ``finish_reason: "stop"``, with ``stream_options.include_usage`` a usage chunk (empty
``choices``), then ``data: [DONE]``. Faults apply as to plain answers: latency, an error
status or a hang before the stream starts; ``reset`` drops the connection after half the
tokens, ``malformed`` sends a broken chunk there and ends; ``token_delay_ms`` paces the tokens.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

__all__ = [
    "StreamBroken",
    "build_stream_events",
    "build_usage",
    "send_stream_events",
    "split_tokens",
]

_TOKEN = re.compile(r"\s*\S+|\s+$")


class StreamBroken(Exception):  # noqa: N818 - it names the fault, not an error condition
    """Raised mid-stream so that the server drops the connection (the ``reset`` fault)."""


def split_tokens(text: str) -> list[str]:
    """`text` in tokens whose concatenation is `text` (pure)."""
    return _TOKEN.findall(text)


def build_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """OpenAI's usage object (pure)."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def build_stream_events(
    answer: str,
    *,
    completion_id: str,
    created: int,
    model: str,
    usage: dict[str, int],
    include_usage: bool,
) -> list[bytes]:
    """The SSE events of one streamed answer, ``[DONE]`` included (pure)."""
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": created}
    base["model"] = model

    def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _event({**base, "choices": [choice]})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": token}) for token in split_tokens(answer)]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append(_event({**base, "choices": [], "usage": usage}))
    events.append(_event("[DONE]"))
    return events


async def send_stream_events(
    events: list[bytes], failure: str | None, token_delay_ms: float
) -> AsyncIterator[bytes]:
    """Yield `events`, paced; a ``reset`` or ``malformed`` failure strikes halfway."""
    halfway = len(events) // 2
    for index, event in enumerate(events):
        if index == halfway and failure == "reset":
            raise StreamBroken("injected mid-stream connection reset")
        if index == halfway and failure == "malformed":
            yield b'data: {"id": "broken", "choices": [{"delta": {"content": \n\n'
            return
        if index > 0 and token_delay_ms > 0:
            await asyncio.sleep(token_delay_ms / 1000)
        yield event
