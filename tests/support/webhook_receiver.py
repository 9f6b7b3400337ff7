"""A webhook receiver on 127.0.0.1 for gate tests: verifies each signature, answers as told.

Each path answers with the status set for it (`answer`, default 200), optionally after a
delay (`hang`); every request is recorded with its JSON body and whether its
``X-Prompt-Rollouts-Signature`` is the HMAC-SHA256 of the exact body under `secret`
(checked as a receiver should: ``hmac.compare_digest``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from controller.signing import verify_signature

__all__ = ["Received", "WebhookReceiver", "run_webhook_receiver"]


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    body: dict[str, Any]
    verified: bool
    status: int


class WebhookReceiver:
    """Thread-safe state of a running receiver."""

    def __init__(self, secret: str, url: str) -> None:
        self.secret = secret
        self.url = url
        self._lock = threading.Lock()
        self._answers: dict[str, int] = {}
        self._delays: dict[str, float] = {}
        self._received: list[Received] = []
        self.stopping = threading.Event()

    def answer(self, path: str, status: int) -> None:
        """Answer requests to `path` with `status` from now on."""
        with self._lock:
            self._answers[path] = status

    def hang(self, path: str, seconds: float) -> None:
        """Wait `seconds` before answering requests to `path` (or until the receiver stops)."""
        with self._lock:
            self._delays[path] = seconds

    def received(self, path: str | None = None) -> list[Received]:
        """What arrived (at `path`, or anywhere), oldest first."""
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def verify(self, body: bytes, header: str | None) -> bool:
        """Whether `header` signs `body` with the secret."""
        return verify_signature(body, header, self.secret)

    def _handle(self, path: str, body: bytes, header: str | None) -> int:
        with self._lock:
            status = self._answers.get(path, 200)
            delay = self._delays.get(path, 0.0)
        if delay:
            self.stopping.wait(delay)
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {"unparsable": body.decode(errors="replace")}
        with self._lock:
            self._received.append(Received(path, parsed, self.verify(body, header), status))
        return status


class _Handler(BaseHTTPRequestHandler):
    receiver: WebhookReceiver

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), 1_000_000)
        body = self.rfile.read(length)
        header = self.headers.get("X-Prompt-Rollouts-Signature")
        status = self.receiver._handle(self.path, body, header)
        try:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            pass  # the caller gave up (a timeout under test)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def run_webhook_receiver(secret: str) -> Iterator[WebhookReceiver]:
    """A receiver on a free 127.0.0.1 port, stopped (hung requests released) on exit."""
    receiver = WebhookReceiver(secret, "")
    handler = type("Handler", (_Handler,), {"receiver": receiver})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    receiver.url = f"http://{host!s}:{port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        receiver.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
