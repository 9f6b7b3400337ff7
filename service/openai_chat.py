"""A client of OpenAI-compatible ``POST {base}/chat/completions`` endpoints (httpx)."""

from __future__ import annotations

from typing import Any

import httpx

from service.chat import ChatRequest, ChatResponse
from service.errors import ModelError
from service.tokens import estimate_tokens

__all__ = ["OpenAIChatModel"]


class OpenAIChatModel:
    """Calls one OpenAI-compatible server through a shared, pooled httpx client."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str | None) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """One upstream call; every failure becomes a ModelError naming the cause."""
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.user:
            body["user"] = request.user
        try:
            response = await self._http.post(
                self._url, json=body, headers=self._headers, timeout=request.timeout_seconds
            )
        except httpx.TimeoutException as error:
            raise ModelError(f"model {request.model}: timed out") from error
        except httpx.HTTPError as error:
            raise ModelError(f"model {request.model}: {type(error).__name__}") from error
        if response.status_code != 200:
            raise ModelError(f"model {request.model}: upstream answered {response.status_code}")
        return _parse(response, request)


def _parse(response: httpx.Response, request: ChatRequest) -> ChatResponse:
    try:
        payload = response.json()
        text = payload["choices"][0]["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("content is not a string")
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise ModelError(f"model {request.model}: malformed response ({error})") from error
    usage = payload.get("usage") or {}
    prompt_chars = sum(len(m.content) for m in request.messages)
    return ChatResponse(
        text=text.strip(),
        # The name we asked for, not the dated one servers echo: prices and metric
        # labels are keyed by the names in manifests.
        model=request.model,
        input_tokens=int(usage.get("prompt_tokens") or estimate_tokens("x" * prompt_chars)),
        output_tokens=int(usage.get("completion_tokens") or estimate_tokens(text)),
    )
