"""A local webhook receiver for controller notifications (rehearsals and tests).

`NotificationReceiver` listens on 127.0.0.1, checks each request's
``X-Prompt-Rollouts-Signature`` (HMAC-SHA256 of the exact body with the shared secret)
and records what came, verified or not. It can answer a scripted sequence of statuses
(``503, 503, 200``) or hold each answer for a while, to play a failing or hung receiver.
Its load is bounded: bodies over 1 MiB are refused, at most 10,000 requests are kept.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from controller.signing import SIGNATURE_HEADER, verify_signature

__all__ = ["NotificationReceiver", "ReceivedNotification"]

MAX_BODY = 1 << 20
MAX_KEPT = 10_000


@dataclass(frozen=True)
class ReceivedNotification:
    """One request the receiver got: its parsed body, whether it verified, what it answered."""

    time: float
    verified: bool
    status: int
    event: Any
    body: bytes

    def to_json(self) -> dict[str, Any]:
        """The record as ``promptctl rehearse --output json`` lists it."""
        return {"verified": self.verified, "status": self.status, "event": self.event}


class NotificationReceiver:
    """Serve on 127.0.0.1 (a free port) while used as a context manager."""

    def __init__(
        self, secret: str, statuses: Sequence[int] = (), delay_seconds: float = 0.0
    ) -> None:
        self.secret = secret
        self._statuses = list(statuses)
        self._delay = delay_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._received: list[ReceivedNotification] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="notify-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        """The URL to point NOTIFY_WEBHOOK_URLS at."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    @property
    def received(self) -> list[ReceivedNotification]:
        """What came so far, in order."""
        with self._lock:
            return list(self._received)

    def _record(self, body: bytes, signature: str | None) -> int:
        verified = verify_signature(body, signature, self.secret)
        try:
            event: Any = json.loads(body)
        except ValueError:
            event = None
        with self._lock:
            status = self._statuses.pop(0) if self._statuses else 200
            if len(self._received) < MAX_KEPT:
                self._received.append(
                    ReceivedNotification(time.time(), verified, status, event, body)
                )
        return status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or length > MAX_BODY:
                    self.send_error(413)
                    return
                body = self.rfile.read(length)
                status = receiver._record(body, self.headers.get(SIGNATURE_HEADER))
                if receiver._delay:
                    receiver._stop.wait(receiver._delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the records are the log

        return Handler

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
