"""A client of OpenAI-compatible ``POST {base}/chat/completions`` endpoints (httpx).

One call, no retries: every failure becomes an :class:`UpstreamError` that says what
happened (status, Retry-After, timeout, reset, malformed body), and the resilience
layer decides what to do about it. Provider SDK retries are never stacked on top.

Structured output (a request's :class:`ResponseFormat`, from a version's ``spec.output``)
is sent as ``response_format: {type: json_schema, ...}`` by default; ``MODEL_RESPONSE_FORMAT``
(``mode``) sends ``json_object`` or nothing instead, for upstreams that lack it. An upstream
that answers 400 to a ``response_format`` is asked again at once without it (the template
still asks for JSON and the service validates the answer), and that model is then asked
without it for the life of the process: the one negotiation step, not a retry.

Given the client's :class:`~service.llm.transport.AiohttpTransport` (``direct``), a call
made while tracing is off skips httpx's request and response models and goes straight to
the transport's pool (:meth:`~service.llm.transport.AiohttpTransport.post`): the same
bytes on the wire (the client's default headers, the same JSON encoding), the same
exceptions; with tracing on, httpx carries the call so that its instrumentation records
the client span.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import httpx

from prompting.tokens import estimate_tokens
from service.errors import UpstreamError
from service.llm.chat import ChatRequest, ChatResponse, RawResponse, ResponseFormat, ToolCall
from service.llm.openai_stream import open_openai_stream
from service.llm.resilience.policy import parse_retry_after
from service.llm.streams import ChatStream
from service.telemetry.spans import OPENAI_PROVIDER, Tracing, chat_span, record_chat_response

if TYPE_CHECKING:
    from service.llm.transport import AiohttpTransport  # aiohttp: imported by the transport

__all__ = ["OpenAIChatModel", "ResponseFormatMode", "build_response_format"]

#: How structured output is asked of the upstream: a JSON schema, any JSON object, or not at all.
ResponseFormatMode: TypeAlias = Literal["json_schema", "json_object", "none"]


def build_response_format(
    wanted: ResponseFormat | None, mode: ResponseFormatMode
) -> dict[str, Any] | None:
    """The ``response_format`` body field for `wanted` in `mode`, or None to send none (pure)."""
    if wanted is None or mode == "none":
        return None
    if mode == "json_object":
        return {"type": "json_object"}
    return {
        "type": "json_schema",
        "json_schema": {
            "name": wanted.name,
            "schema": dict(wanted.schema),
            "strict": wanted.strict,
        },
    }


class OpenAIChatModel:
    """Calls one OpenAI-compatible server through a shared, pooled httpx client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str | None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tracing: Tracing | None = None,
        response_format_mode: ResponseFormatMode = "json_schema",
        direct: AiohttpTransport | None = None,
    ) -> None:
        self._http = http
        self._direct = direct
        self.base_url = base_url.rstrip("/")
        # Parsed once: httpx would parse (and validate) a string URL on every call.
        self._url = httpx.URL(self.base_url + "/chat/completions")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # What httpx would send: the client's default headers, ours, the JSON type.
        self._direct_url = str(self._url)
        self._direct_headers = {
            **dict(http.headers),
            **self._headers,
            "Content-Type": "application/json",
        }
        self._wall_clock = wall_clock
        self._tracing = tracing or Tracing()
        self._mode: ResponseFormatMode = response_format_mode
        #: Models that answered 400 to a response_format and 200 without one.
        self._without_format: set[str] = set()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """One upstream call within `request.timeout_seconds`, start to last byte."""
        tracing = self._tracing
        with chat_span(
            tracing, request, provider=OPENAI_PROVIDER, server_url=self.base_url
        ) as span:
            response = await self._post_negotiated(request)
            reply = _parse(response.content, request)
            record_chat_response(tracing, span, reply, response.content)
            return reply

    async def open_stream(self, request: ChatRequest) -> ChatStream:
        """A streamed call (`service.llm.openai_stream`), up to its first piece of text."""
        return await open_openai_stream(
            self._http, self._url, self._headers, request, self._wall_clock
        )

    async def _post_negotiated(self, request: ChatRequest) -> RawResponse:
        """POST, and once more without ``response_format`` if the upstream answers 400 to it."""
        mode = "none" if request.model in self._without_format else self._mode
        response_format = build_response_format(request.response_format, mode)
        if response_format is None:
            return await self._post(request, None, request.timeout_seconds)
        started = time.monotonic()
        try:
            return await self._post(request, response_format, request.timeout_seconds)
        except UpstreamError as error:
            if error.status != 400:
                raise
            left = request.timeout_seconds - (time.monotonic() - started)
            if left <= 0:
                raise
        # Another body: another Idempotency-Key, or a keyed upstream would refuse it (422).
        key = request.idempotency_key
        plain = replace(request, idempotency_key=f"{key}-plain" if key else None)
        response = await self._post(plain, None, left)
        self._without_format.add(request.model)
        return response

    async def _post(
        self, request: ChatRequest, response_format: dict[str, Any] | None, seconds: float
    ) -> RawResponse:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [
                *({"role": m.role, "content": m.content} for m in request.messages),
                *request.turns,
            ],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.user:
            body["user"] = request.user
        if response_format is not None:
            body["response_format"] = response_format
        if request.tools:
            body["tools"] = list(request.tools)
            if request.tool_choice:
                body["tool_choice"] = request.tool_choice
        name = request.model
        try:
            async with asyncio.timeout(seconds):
                response = await self._send(body, request.idempotency_key, seconds)
        except (TimeoutError, httpx.TimeoutException) as error:
            raise UpstreamError(f"model {name}: timed out", kind="timeout") from error
        except httpx.ConnectError as error:
            raise UpstreamError(f"model {name}: cannot connect", kind="connect") from error
        except httpx.TransportError as error:
            raise UpstreamError(
                f"model {name}: connection broke ({type(error).__name__})", kind="reset"
            ) from error
        if response.status != 200:
            raise UpstreamError(
                f"model {name}: upstream answered {response.status}",
                kind="status",
                status=response.status,
                retry_after=parse_retry_after(
                    response.headers.get("retry-after"), self._wall_clock()
                ),
            )
        return response

    async def _send(
        self, body: dict[str, Any], idempotency_key: str | None, seconds: float
    ) -> RawResponse:
        """One POST: straight to the pool while tracing is off, else through httpx."""
        if self._direct is not None and not self._tracing.enabled:
            headers = self._direct_headers
            if idempotency_key:
                headers = {**headers, "Idempotency-Key": idempotency_key}
            # httpx's own JSON encoding of `json=`: compact, UTF-8, no NaN.
            content = json.dumps(
                body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            return await self._direct.post(self._direct_url, content, headers, seconds)
        extra = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = await self._http.post(
            self._url, json=body, headers={**self._headers, **extra}, timeout=seconds
        )
        return RawResponse(response.status_code, response.headers, response.content)


def _parse(content: bytes, request: ChatRequest) -> ChatResponse:
    try:
        # The bytes straight to json.loads (it detects UTF-8/16/32 as httpx does).
        payload = json.loads(content)
        message = payload["choices"][0]["message"]
        calls = _tool_calls(message.get("tool_calls")) if request.tools else ()
        text = message["content"]
        if text is None and calls:
            text = ""
        if not isinstance(text, str):
            raise TypeError("content is not a string")
        usage = payload.get("usage") or {}
        input_tokens = int(usage.get("prompt_tokens") or 0)
        output_tokens = int(usage.get("completion_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
        raise UpstreamError(
            f"model {request.model}: malformed response ({type(error).__name__})", kind="malformed"
        ) from error
    return ChatResponse(
        text=text.strip(),
        # The name we asked for, not the dated one servers echo: prices and metric
        # labels are keyed by the names in manifests.
        model=request.model,
        input_tokens=input_tokens or sum(estimate_tokens(m.content) for m in request.messages),
        output_tokens=output_tokens or estimate_tokens(text),
        tool_calls=calls,
    )


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    """The message's function calls (TypeError when they are malformed)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TypeError("tool_calls is not a list")
    calls: list[ToolCall] = []
    for item in raw:
        function = item["function"]
        call_id, name, arguments = item["id"], function["name"], function.get("arguments") or "{}"
        if not all(isinstance(value, str) for value in (call_id, name, arguments)):
            raise TypeError("a tool call's id, name and arguments must be strings")
        calls.append(ToolCall(call_id, name, arguments))
    return tuple(calls)
