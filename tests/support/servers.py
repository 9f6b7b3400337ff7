"""Run an ASGI app with uvicorn on a free 127.0.0.1 port in a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

__all__ = ["serve_config_in_thread", "serve_in_thread"]


@contextmanager
def serve_in_thread(app: ASGIApp, startup_timeout: float = 30.0) -> Iterator[str]:
    """Serve `app` over real HTTP; yields its base URL; stops it on exit."""
    # A short graceful shutdown so a hanging request cannot hold the test for long.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    with serve_config_in_thread(config, startup_timeout) as url:
        yield url


@contextmanager
def serve_config_in_thread(config: uvicorn.Config, startup_timeout: float = 30.0) -> Iterator[str]:
    """Run a uvicorn server of `config` (port 0: a free one); yields its base URL."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
