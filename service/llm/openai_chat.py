"""A client of OpenAI-compatible ``POST {base}/chat/completions`` endpoints (httpx).

One call, no retries: every failure becomes an :class:`UpstreamError` that says what
happened (status, Retry-After, timeout, reset, malformed body), and the resilience
layer decides what to do about it. Provider SDK retries are never stacked on top.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from prompting.tokens import estimate_tokens
from service.errors import UpstreamError
from service.llm.chat import ChatRequest, ChatResponse, ToolCall
from service.llm.resilience.policy import parse_retry_after
from service.telemetry.spans import OPENAI_PROVIDER, Tracing, chat_span, record_chat_response

__all__ = ["OpenAIChatModel"]


class OpenAIChatModel:
    """Calls one OpenAI-compatible server through a shared, pooled httpx client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str | None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tracing: Tracing | None = None,
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        # Parsed once: httpx would parse (and validate) a string URL on every call.
        self._url = httpx.URL(self.base_url + "/chat/completions")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._wall_clock = wall_clock
        self._tracing = tracing or Tracing()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """One upstream call within `request.timeout_seconds`, start to last byte."""
        tracing = self._tracing
        with chat_span(
            tracing, request, provider=OPENAI_PROVIDER, server_url=self.base_url
        ) as span:
            response = await self._post(request)
            reply = _parse(response, request)
            record_chat_response(tracing, span, reply, response)
            return reply

    async def _post(self, request: ChatRequest) -> httpx.Response:
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
        if request.tools:
            body["tools"] = list(request.tools)
            if request.tool_choice:
                body["tool_choice"] = request.tool_choice
        headers = dict(self._headers)
        if request.idempotency_key:
            headers["Idempotency-Key"] = request.idempotency_key
        name = request.model
        try:
            async with asyncio.timeout(request.timeout_seconds):
                response = await self._http.post(
                    self._url, json=body, headers=headers, timeout=request.timeout_seconds
                )
        except (TimeoutError, httpx.TimeoutException) as error:
            raise UpstreamError(f"model {name}: timed out", kind="timeout") from error
        except httpx.ConnectError as error:
            raise UpstreamError(f"model {name}: cannot connect", kind="connect") from error
        except httpx.TransportError as error:
            raise UpstreamError(
                f"model {name}: connection broke ({type(error).__name__})", kind="reset"
            ) from error
        if response.status_code != 200:
            raise UpstreamError(
                f"model {name}: upstream answered {response.status_code}",
                kind="status",
                status=response.status_code,
                retry_after=parse_retry_after(
                    response.headers.get("retry-after"), self._wall_clock()
                ),
            )
        return response


def _parse(response: httpx.Response, request: ChatRequest) -> ChatResponse:
    try:
        # The bytes straight to json.loads (it detects UTF-8/16/32 as httpx does).
        payload = json.loads(response.content)
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
