"""Delivering notification events: one bounded queue and one worker per webhook URL.

:meth:`Notifier.submit` never waits: it renders, signs and queues an event for every URL
(a full queue drops its oldest event, counted) and returns. Each URL's worker POSTs its
events in order, at least once: timeouts, connection errors, 408, 429 and 5xx are retried
with exponential backoff (a 429's ``Retry-After`` honoured, capped) up to
``max_attempts``; other answers end the attempt. A dead receiver only holds its own queue.
Logs and metrics name a URL by scheme and host only: webhook URLs are credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from controller.metrics import ControllerMetrics
from controller.notify_config import describe_endpoint
from controller.notify_events import render_body
from controller.signing import SIGNATURE_HEADER, sign_body

__all__ = ["Delivery", "Notifier", "decide_backoff"]

_log = logging.getLogger(__name__)
_RETRIED = frozenset({408, 429})
MAX_BACKOFF_SECONDS = 60.0
#: Transitions remembered to drop a repeat (a reconcile that saw a stale object).
_SEEN = 4096


def decide_backoff(attempt: int, first: float, retry_after: str | None = None) -> float:
    """Seconds before retry `attempt` (1 = the first retry): doubling, or Retry-After."""
    if retry_after is not None:
        with contextlib.suppress(ValueError):
            return min(max(float(retry_after), 0.0), MAX_BACKOFF_SECONDS)
    return float(min(first * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))


@dataclass(frozen=True)
class Delivery:
    """One event rendered for one URL: the exact body and its signature (if signed)."""

    event_id: str
    body: bytes
    signature: str | None


class _Channel:
    """One URL's queue and worker."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.endpoint = describe_endpoint(url)
        self.queue: deque[Delivery] = deque(maxlen=size)
        self.ready = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.task: asyncio.Task[None] | None = None


class Notifier:
    """Signed webhook events, delivered in the background (see the module docstring)."""

    def __init__(
        self,
        urls: tuple[str, ...],
        secret: str,
        metrics: ControllerMetrics,
        *,
        format: Literal["json", "slack"] = "json",
        queue_size: int = 1000,
        max_attempts: int = 6,
        timeout_seconds: float = 5.0,
        backoff_seconds: float = 1.0,
    ) -> None:
        self._channels = [_Channel(url, queue_size) for url in urls]
        self._secret = secret
        self._metrics = metrics
        self._format = format
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._timeout = timeout_seconds
        self._seen: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._http: httpx.AsyncClient | None = None

    @property
    def enabled(self) -> bool:
        """Whether any URL is configured."""
        return bool(self._channels)

    def start(self) -> None:
        """Start one worker per URL (on the running loop)."""
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout), follow_redirects=False, trust_env=False
        )
        for channel in self._channels:
            channel.task = asyncio.create_task(
                self._work(channel), name=f"notify {channel.endpoint}"
            )

    async def stop(self, grace_seconds: float = 2.0) -> None:
        """Give queued events `grace_seconds` to go out, then stop the workers."""
        waits = [channel.idle.wait() for channel in self._channels]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), grace_seconds)
        for channel in self._channels:
            if channel.task is not None:
                channel.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await channel.task
        if self._http is not None:
            await self._http.aclose()

    def submit(self, event: Mapping[str, Any], key: tuple[str, ...]) -> bool:
        """Queue `event` for every URL unless `key` was submitted before; never waits."""
        if not self._channels or key in self._seen:
            return False
        self._seen[key] = None
        while len(self._seen) > _SEEN:
            self._seen.popitem(last=False)
        body = render_body(event, self._format)
        signature = sign_body(body, self._secret) if self._secret else None
        delivery = Delivery(str(event.get("id", "")), body, signature)
        for channel in self._channels:
            if len(channel.queue) == channel.queue.maxlen:
                self._metrics.notifications.labels(channel.endpoint, "dropped").inc()
                _log.warning(
                    "notification queue of %s full: oldest event dropped", channel.endpoint
                )
            channel.queue.append(delivery)
            channel.idle.clear()
            channel.ready.set()
        return True

    async def _work(self, channel: _Channel) -> None:
        while True:
            if not channel.queue:
                channel.idle.set()
                channel.ready.clear()
                await channel.ready.wait()
                continue
            delivery = channel.queue[0]
            result = await self._deliver(channel, delivery)
            if channel.queue and channel.queue[0] is delivery:
                channel.queue.popleft()
            self._metrics.notifications.labels(channel.endpoint, result).inc()

    async def _deliver(self, channel: _Channel, delivery: Delivery) -> str:
        """POST `delivery` until it is accepted, refused or out of attempts: the result."""
        assert self._http is not None
        headers = {"Content-Type": "application/json", "User-Agent": "prompt-rollouts"}
        if delivery.signature is not None:
            headers[SIGNATURE_HEADER] = delivery.signature
        for attempt in range(1, self._max_attempts + 1):
            retry_after: str | None = None
            try:
                response = await self._http.post(
                    channel.url, content=delivery.body, headers=headers
                )
            except httpx.HTTPError as error:
                problem = type(error).__name__
                retry = True
            else:
                if response.is_success:
                    return "delivered"
                problem = f"HTTP {response.status_code}"
                retry = response.status_code in _RETRIED or response.status_code >= 500
                if response.status_code == 429:
                    retry_after = response.headers.get("Retry-After")
            self._metrics.notification_failures.labels(channel.endpoint).inc()
            _log.warning(
                "notification %s to %s failed (attempt %d/%d): %s",
                delivery.event_id,
                channel.endpoint,
                attempt,
                self._max_attempts,
                problem,
            )
            if not retry or attempt == self._max_attempts:
                break
            await asyncio.sleep(decide_backoff(attempt, self._backoff, retry_after))
        return "failed"
