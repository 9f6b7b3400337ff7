"""Load shedding: a bounded number of answering requests in flight per worker.

A request holds its slot until its response's last byte is sent (or its handler ends
without one). Beyond ``MAX_INFLIGHT`` a request is answered at once with ``503`` problem+json and
``Retry-After``, before any work is done for it, so the requests already accepted keep
their latency instead of every request slowing down together. Only the answering
endpoints are shed; health, readiness, metrics and the prompt list always answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.middleware import send_problem

__all__ = [
    "SHED_PATHS",
    "SHED_RETRY_AFTER_SECONDS",
    "InflightLimiter",
    "LoadSheddingMiddleware",
    "ReportingInflightLimiter",
]

_log = logging.getLogger(__name__)
#: The endpoints that answer questions (and so may be shed).
SHED_PATHS = frozenset({"/v1/answers", "/v1/chat/completions"})
#: What a shed request is told to wait before retrying.
SHED_RETRY_AFTER_SECONDS = 1


class InflightLimiter:
    """Counts requests in flight against a limit (no I/O; one per worker, one event loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inflight = 0
        self.shed = 0

    def try_acquire(self) -> bool:
        """Take a slot if one is free; count a shed request otherwise."""
        if self.inflight >= self.limit:
            self.shed += 1
            return False
        self.inflight += 1
        return True

    def release(self) -> None:
        """Give a slot back."""
        self.inflight -= 1


class ReportingInflightLimiter(InflightLimiter):
    """An :class:`InflightLimiter` that reports each change of the count to `report`.

    For several workers: their in-flight gauge lives in files that a scrape adds up, so
    it must be set when the count changes (a function read at scrape time would run in
    whichever worker answers the scrape). One worker keeps the plain limiter.
    """

    def __init__(self, limit: int, report: Callable[[float], None] = lambda _: None) -> None:
        super().__init__(limit)
        self.report = report

    def try_acquire(self) -> bool:
        """Take a slot if one is free (and report the new count)."""
        if super().try_acquire():
            self.report(self.inflight)
            return True
        return False

    def release(self) -> None:
        """Give a slot back (and report the new count)."""
        super().release()
        self.report(self.inflight)


class LoadSheddingMiddleware:
    """Sheds answering requests beyond the limiter's capacity with an immediate 503."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: InflightLimiter,
        paths: Iterable[str] = SHED_PATHS,
        on_shed: Callable[[], None] = lambda: None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.paths = frozenset(paths)
        self.on_shed = on_shed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        if not self.limiter.try_acquire():
            self.on_shed()
            if self.limiter.shed % 100 == 1:
                _log.warning(
                    "shedding load: %d requests in flight (MAX_INFLIGHT); %d shed so far",
                    self.limiter.inflight,
                    self.limiter.shed,
                )
            await send_problem(
                scope,
                send,
                503,
                "overloaded",
                "Service overloaded",
                f"{self.limiter.limit} requests are already in flight on this worker "
                f"(MAX_INFLIGHT); retry after {SHED_RETRY_AFTER_SECONDS} s",
                ((b"retry-after", str(SHED_RETRY_AFTER_SECONDS).encode()),),
            )
            return
        released = False

        async def send_and_release(message: Message) -> None:
            nonlocal released
            await send(message)
            # The slot is free once the response's last byte is written: a kept-alive
            # client's next request must not find it still taken while the handler's
            # frames unwind (64 connections then counted up to 90 in flight).
            if (
                not released
                and message["type"] == "http.response.body"
                and not message.get("more_body", False)
            ):
                released = True
                self.limiter.release()

        try:
            await self.app(scope, receive, send_and_release)
        finally:
            if not released:
                self.limiter.release()
