"""Connection hygiene under uvicorn, before either parser sees a byte (see
:mod:`service.server` for the limits and the answers they give).

:class:`ConnectionGuard` holds one connection's head timer and :class:`HeaderMeter`;
:class:`GuardedProtocol` wires it into uvicorn's protocol classes, the same for h11 and
httptools, and :func:`build_protocol` binds a class to the configured limits (a picklable
factory: with ``WEB_CONCURRENCY`` > 1 uvicorn sends it to every spawned worker).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.http.problems import PROBLEM_MEDIA_TYPE, build_problem
from service.http.request_ids import new_request_id

__all__ = [
    "ConnectionGuard",
    "ConnectionLimits",
    "GuardedH11Protocol",
    "GuardedHttpToolsProtocol",
    "GuardedProtocol",
    "HeaderMeter",
    "build_protocol",
    "render_raw_problem",
]

#: Named as before the split: operators filter the server's refusals by this logger.
_log = logging.getLogger("service.server")
#: The end of a request head: an empty line (CRLF or a bare LF, which h11 accepts).
_HEAD_END = re.compile(rb"\n\r?\n")


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may cost before the parser sees it."""

    header_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024
    max_connections: int = 1000


def render_raw_problem(
    status: int, slug: str, detail: str, headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """A complete HTTP/1.1 problem response that closes the connection (pure)."""
    title = HTTPStatus(status).phrase
    request_id = new_request_id()
    body = json.dumps(build_problem(status, slug, title, detail, "", request_id)).encode()
    lines = [
        f"HTTP/1.1 {status} {title}",
        f"content-type: {PROBLEM_MEDIA_TYPE}",
        f"content-length: {len(body)}",
        "connection: close",
        f"x-request-id: {request_id}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


class HeaderMeter:
    """Counts the bytes of one request head as they arrive; pure state, no I/O."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._tail = b""

    def reset(self) -> None:
        """A request head was parsed: start counting the next one."""
        self.count = 0
        self._tail = b""

    def feed(self, data: bytes) -> bool:
        """Whether the head, with `data`, is still within the limit (up to its end, if seen)."""
        window = self._tail + data
        end = _HEAD_END.search(window)
        size = self.count - len(self._tail) + end.end() if end else self.count + len(data)
        self.count += len(data)
        self._tail = window[-2:]
        return size <= self.limit


class ConnectionGuard:
    """The timer and meter of one connection; the protocol tells it what happens."""

    def __init__(self, limits: ConnectionLimits, loop: asyncio.AbstractEventLoop) -> None:
        self.limits = limits
        self.loop = loop
        self.meter = HeaderMeter(limits.max_header_bytes)
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def opened(self, transport: asyncio.Transport, connections: int) -> bool:
        """A connection was made; False (and a 503 sent) when there are too many."""
        self.transport = transport
        if connections > self.limits.max_connections:
            _log.warning("connection refused: %d connections open", connections - 1)
            self.reject(
                503,
                "too-many-connections",
                f"the server holds its maximum of {self.limits.max_connections} connections",
                (("retry-after", "1"),),
            )
            return False
        self._start_timer()
        return True

    def admit(self, data: bytes, reading_head: bool) -> bool:
        """Whether `data` may go to the parser; refuses a request head over the limit."""
        if not reading_head:
            return True
        if self._timer is None:
            self._start_timer()
        if self.meter.feed(data):
            return True
        _log.info("request head over %d bytes: closing", self.limits.max_header_bytes)
        self.reject(
            431,
            "headers-too-large",
            f"the request line and headers are over the {self.limits.max_header_bytes}-byte limit",
        )
        return False

    def parsed(self, reading_head: bool) -> None:
        """After the parser ran: a request in progress stops the head timer."""
        if not reading_head:
            self.meter.reset()
            self._stop_timer()

    def reject(
        self, status: int, slug: str, detail: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Write a problem response and close the connection."""
        self._stop_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(render_raw_problem(status, slug, detail, headers))
            self.transport.close()

    def closed(self) -> None:
        """The connection is gone."""
        self._stop_timer()

    def _start_timer(self) -> None:
        self._timer = self.loop.call_later(self.limits.header_timeout, self._expired)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.meter.count == 0:
            if self.transport is not None:
                self.transport.close()
            return
        _log.info("request head not complete in %ss: closing", self.limits.header_timeout)
        self.reject(
            408,
            "header-timeout",
            f"the request line and headers did not arrive within {self.limits.header_timeout:g} s",
        )


if TYPE_CHECKING:
    _Protocol = H11Protocol  # what the mixin relies on, common to both uvicorn protocols
else:
    _Protocol = object


class GuardedProtocol(_Protocol):
    """Puts a uvicorn HTTP protocol behind a :class:`ConnectionGuard` (a mixin: list it
    before the uvicorn protocol class)."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = ConnectionGuard(limits or self.limits, self.loop)

    def _reading_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _parser_ready(self) -> bool:
        """Whether the parser can say where the request is (httptools': once it exists)."""
        return True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard.opened(transport, len(self.connections))

    def data_received(self, data: bytes) -> None:
        if self.guard.admit(data, self._reading_head()):
            super().data_received(data)
            if self._parser_ready():
                self.guard.parsed(self._reading_head())

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.closed()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self.guard.reject(400, "malformed-request", "the request is not valid HTTP/1.1")


class GuardedH11Protocol(GuardedProtocol, H11Protocol):
    """uvicorn's h11 protocol behind a :class:`ConnectionGuard`."""


class GuardedHttpToolsProtocol(GuardedProtocol, HttpToolsProtocol):  # type: ignore[misc]
    """uvicorn's httptools protocol behind a :class:`ConnectionGuard`."""

    def _parser_ready(self) -> bool:
        return getattr(self, "parser", None) is not None


def build_protocol(
    parser: Literal["h11", "httptools"], limits: ConnectionLimits
) -> type[asyncio.Protocol]:
    """The guarded protocol class for `parser`, bound to `limits`: a ``functools.partial``
    of a module-level class, which pickles (a class made at run time would not)."""
    base: type[GuardedProtocol] = (
        GuardedH11Protocol if parser == "h11" else GuardedHttpToolsProtocol
    )
    return cast(type[asyncio.Protocol], functools.partial(base, limits=limits))
