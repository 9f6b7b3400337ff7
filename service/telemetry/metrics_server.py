"""``METRICS_PORT``: /metrics on a listener of its own, run by the app's lifespan.

The listener binds the same address as the API (see
:func:`service.http.access.decide_bind_host`), serves ``GET /metrics`` and nothing else, and
is unauthenticated: keep it reachable by the monitoring system only (the chart's
NetworkPolicy admits the monitoring namespace alone). With several workers
(``WEB_CONCURRENCY``) each one listens on the port (``SO_REUSEPORT``) and any of them
answers a scrape with every worker's metrics added up (service/telemetry/multiprocess.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.telemetry.metrics import Metrics

__all__ = ["MetricsListenerError", "build_metrics_app", "serve_metrics"]


class MetricsListenerError(RuntimeError):
    """The metrics listener could not start (the port is taken, say)."""


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signals to the main server (it stops with the lifespan)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.done_starting = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.done_starting.set()


def _bind(host: str, port: int, shared: bool = False) -> socket.socket:
    """A listening-ready socket on ``host:port`` (IPv4 or IPv6), so a taken port is a clear
    error here rather than uvicorn's exit; `shared`: the other workers bind it too."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def build_metrics_app(metrics: Metrics) -> Starlette:
    """An ASGI app with only ``GET /metrics``."""

    async def exposition(_request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", exposition, methods=["GET"])])


@asynccontextmanager
async def serve_metrics(metrics: Metrics, host: str, port: int) -> AsyncIterator[uvicorn.Server]:
    """Serve /metrics on ``host:port`` until the context ends; raises if it cannot listen."""
    config = uvicorn.Config(
        build_metrics_app(metrics),
        host=host,
        port=port,
        lifespan="off",
        access_log=False,
        log_config=None,
    )
    try:
        listening = _bind(host, port, shared=metrics.multiprocess_dir is not None)
    except OSError as error:
        raise MetricsListenerError(
            f"cannot serve /metrics on {host}:{port} (METRICS_PORT): {error.strerror}"
        ) from error
    server = _Listener(config)
    task = asyncio.create_task(server.serve(sockets=[listening]), name="metrics listener")
    starting = asyncio.create_task(server.done_starting.wait())
    await asyncio.wait({task, starting}, return_when=asyncio.FIRST_COMPLETED)
    starting.cancel()
    if not server.started:
        with contextlib.suppress(BaseException):
            await task
        raise MetricsListenerError(f"cannot serve /metrics on {host}:{port} (METRICS_PORT)")
    try:
        yield server
    finally:
        server.should_exit = True
        await task
        listening.close()
