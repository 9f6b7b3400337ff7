"""Pure ASGI middleware: request ids, header checks, and the request body's size and time limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.problems import PROBLEM_MEDIA_TYPE, build_problem
from service.http.request_ids import new_request_id

__all__ = [
    "BodySizeLimitMiddleware",
    "CancelOnDisconnectMiddleware",
    "HeaderCheckMiddleware",
    "RequestIdMiddleware",
    "build_replay",
    "send_problem",
]

_log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: Control characters no header may carry (HTAB is allowed in values).
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


async def send_problem(
    scope: Scope,
    send: Send,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Answer with a problem details response from middleware (the app never ran)."""
    problem = build_problem(
        status, slug, title, detail, scope["path"], scope.get("state", {}).get("request_id")
    )
    body = json.dumps(problem).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def build_replay(first: Message, receive: Receive) -> Receive:
    """A receive that hands out `first` once, then the server's own messages."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return first

    return replay


class RequestIdMiddleware:
    """Takes a well-formed X-Request-ID or makes one; stores it in scope state; echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if _VALID_REQUEST_ID.fullmatch(incoming) else new_request_id()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        # The request's deadline counts from here (time.monotonic), queueing included.
        state.setdefault("received_at", time.monotonic())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class HeaderCheckMiddleware:
    """Refuses control characters in headers (400 problem) and closes half-read requests.

    Both parsers refuse most control characters themselves (see ``service.server``); this
    makes the rule the same whichever parser runs. A response that starts before the
    request body was read to its end carries ``connection: close``, so the unread rest is
    never taken for the next request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if _CONTROL.search(name) or _CONTROL.search(value):
                header = _CONTROL.sub(b"?", name[:64]).decode("latin-1")
                await send_problem(
                    scope,
                    send,
                    400,
                    "invalid-header",
                    "Invalid header",
                    f"header {header!r} contains a control character",
                    ((b"connection", b"close"),),
                )
                return
        headers = dict(scope["headers"])
        body_done = headers.get(b"content-length", b"0") in (b"", b"0") and (
            b"transfer-encoding" not in headers
        )

        async def tracking_receive() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not body_done:
                headers = list(message.get("headers", []))
                if (b"connection", b"close") not in headers:
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, tracking_receive, closing_send)


class BodySizeLimitMiddleware:
    """Reads the request body up front, within `max_bytes` and `timeout` seconds, then replays it.

    Over `max_bytes` (declared or streamed) → 413; not complete within `timeout` seconds of
    the first read → 408. Both are problem responses that close the connection, and a
    handler never starts on a request that turns out too large or too slow.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 15.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:
                        await self._too_large(scope, send)
                        return
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            _log.info("request body not complete in %ss: closing", self.timeout)
            await send_problem(
                scope,
                send,
                408,
                "body-timeout",
                "Request body timeout",
                f"the request body did not arrive within {self.timeout:g} s",
                ((b"connection", b"close"),),
            )
            return
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, build_replay(whole, receive), send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        await send_problem(
            scope,
            send,
            413,
            "body-too-large",
            "Request body too large",
            f"the request body is over the {self.max_bytes}-byte limit",
            ((b"connection", b"close"),),
        )


class CancelOnDisconnectMiddleware:
    """Cancels a request's handler when its client goes away, so upstream calls stop too.

    Sits inside BodySizeLimitMiddleware, which has already read the whole body: the
    first message is the body, and any later message from the server is a disconnect.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        first = await receive()
        if first["type"] == "http.disconnect":
            return
        delivered = False
        gone = asyncio.Event()
        finished = False

        async def app_receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return first
            await gone.wait()
            return {"type": "http.disconnect"}

        async def tracking_send(message: Message) -> None:
            nonlocal finished
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        async def handle() -> None:
            await self.app(scope, app_receive, tracking_send)

        handler = asyncio.create_task(handle())
        watcher = asyncio.create_task(watch())
        try:
            await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if handler.done() or finished:
                await handler
                return
            _log.info("client disconnected: cancelling %s", scope["path"])
            handler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await handler
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
