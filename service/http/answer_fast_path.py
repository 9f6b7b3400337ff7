"""``POST /v1/answers`` served as plain ASGI when the request is the common, plain kind.

FastAPI's route (:mod:`service.http.routers.answers`) stays the definition of the
endpoint: its OpenAPI entry, its validation errors, and every request this path does not
take. Routing, the dependency solve, header parsing and the route's exception middleware
cost the service more CPU per answer than its own pipeline (docs/benchmarks.md); this
middleware, the innermost one, answers the plain requests without them:

    POST /v1/answers, one ``content-type: application/json`` header (optionally
    ``; charset=utf-8``), no ``X-Prompt-Version``, ``X-No-Shadow`` or
    ``Idempotency-Key`` header, and a body that parses and validates as a non-streaming
    :class:`AnswerRequest`.

Anything else (a stream, a pin, an idempotency key, a body FastAPI would refuse) goes to
the route untouched, body included, so every error response stays FastAPI's own. The
answer itself comes from the same function the route calls (``answer_plainly``), and the
service errors it raises become responses through the app's own exception handlers.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.answering.schemas import AnswerRequest
from service.http.middleware import build_replay
from service.http.routers.answers import ANSWERS_PATH, answer_plainly

__all__ = ["AnswerFastPath", "decide_plain_answer", "find_exception_handler"]

#: Headers that change how the route answers: the route reads them itself.
_ROUTE_HEADERS = frozenset((b"x-prompt-version", b"x-no-shadow", b"idempotency-key"))
#: The content types FastAPI reads as JSON, in the exact spellings this path accepts.
_PLAIN_JSON = frozenset((b"application/json", b"application/json; charset=utf-8"))


def decide_plain_answer(
    headers: Sequence[tuple[bytes, bytes]], body: bytes
) -> AnswerRequest | None:
    """The request to answer here, or None when the route must handle it (pure)."""
    content_types = []
    for name, value in headers:
        if name in _ROUTE_HEADERS:
            return None
        if name == b"content-type":
            content_types.append(value.lower())
    if len(content_types) != 1 or content_types[0] not in _PLAIN_JSON or not body:
        return None
    try:
        request = AnswerRequest.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError):  # JSON errors, deep nesting
        return None
    return None if request.stream else request


_Handler = Callable[[Request, Exception], Any]


def find_exception_handler(handlers: dict[Any, _Handler], error: Exception) -> _Handler | None:
    """The handler Starlette's ExceptionMiddleware would pick for `error` (pure).

    A status-code handler comes first for an HTTPException. The ``Exception`` handler is
    not one of them: Starlette runs it in the outermost ServerErrorMiddleware, which an
    unhandled error still reaches from here.
    """
    if isinstance(error, HTTPException) and error.status_code in handlers:
        return handlers[error.status_code]
    for kind in type(error).__mro__:
        if kind is Exception:
            return None
        if kind in handlers:
            return handlers[kind]
    return None


class AnswerFastPath:
    """Answers plain ``POST /v1/answers`` requests without FastAPI's routing (see above)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != ANSWERS_PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        # BodySizeLimitMiddleware, further out, has read the whole body: one message.
        first = await receive()
        replay = build_replay(first, receive)
        whole = first["type"] == "http.request" and not first.get("more_body", False)
        plain = decide_plain_answer(scope["headers"], first.get("body", b"")) if whole else None
        if plain is None:
            await self.app(scope, replay, send)
            return
        state = scope["state"]
        app = scope["app"]
        try:
            response = await answer_plainly(
                app.state.resources,
                state["caller"],
                state["request_id"],
                state.get("received_at"),
                plain,
                shadow=True,
            )
        except Exception as error:
            handler = find_exception_handler(app.exception_handlers, error)
            if handler is None:
                raise
            response = await self._handled(handler, Request(scope, replay), error)
        await response(scope, replay, send)

    @staticmethod
    async def _handled(handler: _Handler, request: Request, error: Exception) -> Response:
        response = handler(request, error)
        if inspect.isawaitable(response):
            response = await response
        assert isinstance(response, Response)
        return response
