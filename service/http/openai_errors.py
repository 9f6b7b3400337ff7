"""Pure ASGI middleware: on the OpenAI-compatible paths, problem details become OpenAI errors.

Every error of the service is built once, as ``application/problem+json`` (handlers and
middleware alike: 401 and quota 429 from access control, 413 from the body limit, 503 from
load shedding, 422 from validation). On ``/v1/chat/completions`` and ``/v1/models`` this
middleware, the outermost one, rewrites such a body into the OpenAI error object
(:func:`service.http.openai_shapes.build_error`), keeping the status and every other
header (``Retry-After``, ``WWW-Authenticate``, ``X-Request-ID``); a 500 or 502 also gets
``x-should-retry: false``. Other responses (and
every response on other paths) pass through untouched, unbuffered.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.openai_shapes import build_error
from service.http.problems import PROBLEM_MEDIA_TYPE

__all__ = ["OPENAI_PATHS", "OpenAIErrorMiddleware", "is_openai_path"]

#: Paths that speak the OpenAI wire format (``/v1/models/<id>`` too).
OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")
#: Statuses a retry cannot change (a template that fails to render, a model upstream that
#: refuses the request): ``x-should-retry: false`` stops the OpenAI SDKs' own retries.
#: Every other status keeps the SDK's rules (it retries 408, 409, 429 and 5xx, honouring
#: ``Retry-After``).
_FINAL_STATUSES = frozenset({500, 502})


def is_openai_path(path: str) -> bool:
    """Whether `path` is one of the OpenAI-compatible endpoints."""
    return any(path == p or path.startswith(p + "/") for p in OPENAI_PATHS)


def _translate(body: bytes, status: int) -> bytes:
    """The OpenAI error body of a problem body (a body that is not JSON keeps its text)."""
    try:
        problem: Any = json.loads(body)
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {"detail": body.decode("utf-8", "replace")[:500]}
    return json.dumps(build_error(problem, status)).encode()


class OpenAIErrorMiddleware:
    """Rewrites problem details into OpenAI error objects on the OpenAI-compatible paths."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_openai_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def translating_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                given = dict(message.get("headers", []))
                media = given.get(b"content-type", b"").decode("latin-1")
                if media.partition(";")[0].strip() == PROBLEM_MEDIA_TYPE:
                    start = message  # held until the whole problem body is in
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                status = int(start["status"])
                body = _translate(b"".join(chunks), status)
                headers = [
                    (name, value)
                    for name, value in start.get("headers", [])
                    if name.lower() not in (b"content-type", b"content-length")
                ]
                headers += [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                if status in _FINAL_STATUSES:
                    headers.append((b"x-should-retry", b"false"))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, translating_send)
