"""The service's HTTP server: uvicorn with connection hygiene, the same under h11 and httptools.

``python -m service --host 127.0.0.1 --port 8000`` is the one way the service starts
(``make run``, the image's CMD and the Helm chart all use it). Everything but the
address comes from :class:`service.settings.Settings`. ``WEB_CONCURRENCY`` workers run
in one process (the default, 1) or under a supervisor (:mod:`service.workers` decides
whether they may, :mod:`service.supervisor` runs them); the limits below are per worker.

uvicorn alone bounds neither the time a client may take to send its request head nor
(with httptools) its size, and a connection that never sends a byte is kept forever.
The protocol classes of :mod:`service.http.connections` add, before either parser sees a
byte:

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
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn

from service.http.connections import (
    ConnectionGuard,
    ConnectionLimits,
    HeaderMeter,
    build_protocol,
    render_raw_problem,
)
from service.settings import Settings
from service.supervisor import MetricsFolderError, serve_workers
from service.telemetry.logs import configure_logging
from service.workers import build_worker_settings, decide_workers

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = [
    "AppFactory",
    "ConnectionGuard",
    "ConnectionLimits",
    "HeaderMeter",
    "build_protocol",
    "build_server_config",
    "decide_workers",
    "main",
    "render_raw_problem",
]


#: Seconds a worker may take to answer the supervisor's health ping (WEB_CONCURRENCY > 1).
WORKER_HEALTHCHECK_SECONDS = 60


@dataclass(frozen=True)
class AppFactory:
    """``create_app(settings, host)`` as a picklable object, for uvicorn's ``factory=True``.

    The app is imported when it is built, in the process that serves it: with several
    workers their supervisor never loads it (measured: ~70 MB of RSS instead of ~155 MB,
    and none of the app's import time before the workers start). The app it builds sets
    the garbage collector for serving once started (:mod:`service.garbage_collection`).
    """

    settings: Settings
    host: str

    def __call__(self) -> FastAPI:
        from service.app import create_app  # noqa: PLC0415 - see the docstring

        return create_app(self.settings, self.host, settle_gc=True)


def build_limits(settings: Settings) -> ConnectionLimits:
    """The connection limits the settings ask for."""
    return ConnectionLimits(
        header_timeout=settings.header_timeout_seconds,
        max_header_bytes=settings.max_header_bytes,
        max_connections=settings.max_connections,
    )


def build_server_config(
    settings: Settings, host: str, port: int, workers: int = 1, **extra: Any
) -> uvicorn.Config:
    """uvicorn's configuration for the app (`extra` for tests: log level and the like).

    Everything in it pickles (the app factory is an :class:`AppFactory`, the protocol
    factory a ``functools.partial`` of a module-level class): with `workers` > 1, uvicorn
    sends it to each spawned worker process.
    """
    # A factory, so the app (and its logging set-up) is built after uvicorn configures
    # its own loggers, which the service's logging then routes as JSON lines.
    return uvicorn.Config(
        AppFactory(settings, host),
        factory=True,
        workers=workers,  # explicit: uvicorn would read WEB_CONCURRENCY itself
        # A worker must answer the supervisor's ping within this; the first ping comes
        # before the worker has imported the app (seconds on a busy node), and uvicorn's
        # 5 s default then kills and respawns starting workers in a loop.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
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
    settings = Settings()
    try:
        workers = decide_workers(settings)
    except ValueError as exc:
        parser.exit(2, "".join(f"python -m service: {line}\n" for line in str(exc).splitlines()))
    settings = build_worker_settings(settings, workers, secrets.token_urlsafe(32))
    config = build_server_config(
        settings,
        args.host,
        args.port,
        workers,
        log_level=args.log_level,
        access_log=not args.no_access_log,
    )
    if workers == 1:
        uvicorn.Server(config).run()
        return
    configure_logging(settings.log_level)  # the parent's lines are JSON like the workers'
    try:
        code = serve_workers(config, os.environ)
    except MetricsFolderError as exc:
        parser.exit(2, f"python -m service: {exc}\n")
    if code:
        sys.exit(code)
