"""Streamed calls to OpenAI-compatible ``/chat/completions`` (``stream: true``).

The call ends, as far as the resilience layer sees it, at the first piece of text: every
failure up to it is an :class:`UpstreamError` like those of a plain call (status,
Retry-After, timeout, reset, malformed), so it is retried or falls back. After it, the
rest is read as it comes; a failure there (a dropped connection, a broken chunk, a stream
that ends without ``[DONE]``) raises UpstreamError from the stream's iterator.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx

from service.errors import UpstreamError
from service.llm.chat import STREAM_EXTENSION, ChatRequest
from service.llm.resilience.policy import parse_retry_after
from service.llm.streams import ChatStream, StreamUsage, estimate_usage

__all__ = ["open_openai_stream", "parse_stream_line"]

_DONE = object()


def parse_stream_line(line: str) -> dict[str, Any] | object | None:
    """One SSE line: a chunk (dict), ``_DONE`` for ``data: [DONE]``, None for anything
    else (blank lines, comments, other fields); raises ValueError for a broken chunk (pure)."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return _DONE
    chunk = json.loads(data)
    if not isinstance(chunk, dict):
        raise ValueError("a chunk must be a JSON object")
    if "error" in chunk:
        raise ValueError("the upstream sent an error mid-stream")
    return chunk


def _content(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    content = (choices[0].get("delta") or {}).get("content")
    if content is not None and not isinstance(content, str):
        raise TypeError("delta content is not a string")
    return content or ""


def _transport_error(name: str, error: BaseException) -> UpstreamError:
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return UpstreamError(f"model {name}: timed out", kind="timeout")
    if isinstance(error, httpx.ConnectError):
        return UpstreamError(f"model {name}: cannot connect", kind="connect")
    if isinstance(error, httpx.TransportError):
        return UpstreamError(
            f"model {name}: connection broke ({type(error).__name__})", kind="reset"
        )
    return UpstreamError(
        f"model {name}: malformed stream ({type(error).__name__})", kind="malformed"
    )


class _Reader:
    """Reads the chunks of one streamed response."""

    def __init__(self, response: httpx.Response, request: ChatRequest) -> None:
        self.response = response
        self.request = request
        self.lines = response.aiter_lines()
        self.usage = StreamUsage()
        self.text: list[str] = []
        self.done = False

    async def next_piece(self) -> str | None:
        """The next non-empty piece of text; None at ``[DONE]``."""
        try:
            async for line in self.lines:
                parsed = parse_stream_line(line)
                if parsed is _DONE:
                    self.done = True
                    return None
                if not isinstance(parsed, dict):
                    continue
                usage = parsed.get("usage")
                if isinstance(usage, dict):
                    self.usage.input_tokens = int(usage.get("prompt_tokens") or 0)
                    self.usage.output_tokens = int(usage.get("completion_tokens") or 0)
                piece = _content(parsed)
                if piece:
                    self.text.append(piece)
                    return piece
        except (httpx.HTTPError, TimeoutError, ValueError, TypeError, AttributeError) as error:
            raise _transport_error(self.request.model, error) from error
        raise UpstreamError(f"model {self.request.model}: stream ended early", kind="reset")

    async def rest(self) -> AsyncIterator[str]:
        try:
            while (piece := await self.next_piece()) is not None:
                yield piece
            estimated = estimate_usage(self.request, "".join(self.text))
            self.usage.input_tokens = self.usage.input_tokens or estimated.input_tokens
            self.usage.output_tokens = self.usage.output_tokens or estimated.output_tokens
        finally:
            await self.response.aclose()


async def open_openai_stream(
    http: httpx.AsyncClient,
    url: httpx.URL,
    headers: dict[str, str],
    request: ChatRequest,
    wall_clock: Callable[[], datetime],
) -> ChatStream:
    """Start a streamed call; return once its first piece of text (or its end) arrived."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.user:
        body["user"] = request.user
    sent = dict(headers)
    if request.idempotency_key:
        sent["Idempotency-Key"] = request.idempotency_key
    name = request.model
    outgoing = http.build_request(
        "POST",
        url,
        json=body,
        headers=sent,
        timeout=request.timeout_seconds,
        extensions={STREAM_EXTENSION: True},
    )
    response: httpx.Response | None = None
    try:
        async with asyncio.timeout(request.timeout_seconds):
            response = await http.send(outgoing, stream=True)
            if response.status_code != 200:
                await response.aread()
                raise UpstreamError(
                    f"model {name}: upstream answered {response.status_code}",
                    kind="status",
                    status=response.status_code,
                    retry_after=parse_retry_after(
                        response.headers.get("retry-after"), wall_clock()
                    ),
                )
            reader = _Reader(response, request)
            first = await reader.next_piece()
    except BaseException as error:
        if response is not None:
            await response.aclose()
        if isinstance(error, UpstreamError) or not isinstance(error, Exception):
            raise
        if isinstance(error, httpx.HTTPError | TimeoutError):
            raise _transport_error(name, error) from error
        raise
    if first is None:
        await response.aclose()
        return ChatStream(model=name, first="", rest=_nothing(), usage=reader.usage)
    return ChatStream(model=name, first=first, rest=reader.rest(), usage=reader.usage)


async def _nothing() -> AsyncIterator[str]:
    return
    yield  # an async generator that yields nothing
