"""The service's HTTP server: uvicorn with connection hygiene, the same under h11 and httptools.

``python -m service --host 127.0.0.1 --port 8000`` is the one way the service starts
(``make run``, the image's CMD and the Helm chart all use it). Everything but the
address comes from :class:`service.settings.Settings`.

uvicorn alone bounds neither the time a client may take to send its request head nor
(with httptools) its size, and a connection that never sends a byte is kept forever.
The protocol classes here add, before either parser sees a byte:

- ``HEADER_TIMEOUT_SECONDS``: the request line and headers must arrive within this time
  (from the connection's start, or from the first byte of a later request on a kept-alive
  connection), else ``408`` (or a plain close if nothing arrived) and the connection ends;
- ``MAX_HEADER_BYTES``: a larger request head gets ``431`` and the connection ends;
- ``MAX_CONNECTIONS``: a connection beyond it gets ``503`` and is closed at once;
- requests the parser itself rejects (control characters in headers, bad framing) get a
  ``400`` problem instead of uvicorn's plain-text one.

Every answer written here is ``application/problem+json`` like the app's own errors.
The body's read timeout and size limit are enforced in the app
(:class:`service.http.middleware.BodySizeLimitMiddleware`), identically for both parsers.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar, Literal, cast

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.app import create_app
from service.http.problems import PROBLEM_MEDIA_TYPE, build_problem
from service.settings import Settings

__all__ = [
    "ConnectionGuard",
    "ConnectionLimits",
    "HeaderMeter",
    "build_protocol",
    "build_server_config",
    "main",
    "render_raw_problem",
]

_log = logging.getLogger(__name__)
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
    request_id = uuid.uuid4().hex
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


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol behind a :class:`ConnectionGuard`."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = ConnectionGuard(self.limits, self.loop)

    def _reading_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard.opened(transport, len(self.connections))

    def data_received(self, data: bytes) -> None:
        if self.guard.admit(data, self._reading_head()):
            super().data_received(data)
            self.guard.parsed(self._reading_head())

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.closed()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self.guard.reject(400, "malformed-request", "the request is not valid HTTP/1.1")


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol behind a :class:`ConnectionGuard`."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = ConnectionGuard(self.limits, self.loop)

    def _reading_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard.opened(transport, len(self.connections))

    def data_received(self, data: bytes) -> None:
        if self.guard.admit(data, self._reading_head()):
            super().data_received(data)
            if self.parser is not None:
                self.guard.parsed(self._reading_head())

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.closed()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self.guard.reject(400, "malformed-request", "the request is not valid HTTP/1.1")


def build_protocol(
    parser: Literal["h11", "httptools"], limits: ConnectionLimits
) -> type[asyncio.Protocol]:
    """The guarded protocol class for `parser`, bound to `limits`."""
    base: type[GuardedH11Protocol | GuardedHttpToolsProtocol] = (
        GuardedH11Protocol if parser == "h11" else GuardedHttpToolsProtocol
    )
    return cast(type[asyncio.Protocol], type(base.__name__, (base,), {"limits": limits}))


def build_limits(settings: Settings) -> ConnectionLimits:
    """The connection limits the settings ask for."""
    return ConnectionLimits(
        header_timeout=settings.header_timeout_seconds,
        max_header_bytes=settings.max_header_bytes,
        max_connections=settings.max_connections,
    )


def build_server_config(settings: Settings, host: str, port: int, **extra: Any) -> uvicorn.Config:
    """uvicorn's configuration for the app (`extra` for tests: log level and the like)."""
    # A factory, so the app (and its logging set-up) is built after uvicorn configures
    # its own loggers, which the service's logging then routes as JSON lines.
    return uvicorn.Config(
        functools.partial(create_app, settings),
        factory=True,
        host=host,
        port=port,
        http=build_protocol(settings.http_parser, build_limits(settings)),
        # libuv's event loop (a pinned runtime dependency): less CPU per request than
        # asyncio's pure-Python loop; the connection limits above hold on either loop.
        loop="uvloop",
        ws="none",
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        h11_max_incomplete_event_size=settings.max_header_bytes + 1024,
        **extra,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m service``: serve the app with the settings from the environment."""
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (8000)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's own loggers (info); the service's follow LOG_LEVEL",
    )
    parser.add_argument(
        "--no-access-log", action="store_true", help="turn uvicorn's access log off"
    )
    args = parser.parse_args(argv)
    config = build_server_config(
        Settings(),
        args.host,
        args.port,
        log_level=args.log_level,
        access_log=not args.no_access_log,
    )
    uvicorn.Server(config).run()
