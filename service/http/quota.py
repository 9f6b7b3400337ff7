"""Inbound quota per tenant (``TENANT_RPM``): a moving one-minute window.

Two stores with one rule (:func:`decide_window`): in process, or in Redis (a sorted set
per tenant, trimmed and counted in one Lua script on Redis' own clock, so every replica
sees the same window). A request over the limit is refused with the seconds until the
oldest request in the window leaves it. Refused requests do not count.

If Redis cannot be reached the request is let through (a quota outage must not become a
service outage) and :class:`QuotaUnavailableError` tells the caller to log and count it.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import redis.asyncio


__all__ = [
    "MemoryQuota",
    "QuotaDecision",
    "QuotaStore",
    "QuotaUnavailableError",
    "RedisQuota",
    "build_quota",
    "decide_window",
]

WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class QuotaDecision:
    """Whether a request may go ahead; if not, how long until it could."""

    allowed: bool
    retry_after: float = 0.0


class QuotaUnavailableError(Exception):
    """The shared quota store failed; the request was let through."""


def decide_window(
    times: deque[float], now: float, limit: int, window: float = WINDOW_SECONDS
) -> QuotaDecision:
    """Moving-window rule over the admitted request times (oldest first), pure but for
    trimming ``times`` and appending ``now`` when the request is admitted."""
    while times and times[0] <= now - window:
        times.popleft()
    if len(times) < limit:
        times.append(now)
        return QuotaDecision(True)
    return QuotaDecision(False, max(0.001, times[0] + window - now))


class QuotaStore(Protocol):
    """Counts requests per tenant."""

    async def admit(self, tenant: str, limit: int) -> QuotaDecision:
        """Count one request of ``tenant`` if it fits ``limit`` per minute."""
        ...


class MemoryQuota:
    """One process's windows (not shared by replicas)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, deque[float]] = {}

    async def admit(self, tenant: str, limit: int) -> QuotaDecision:
        times = self._windows.setdefault(tenant, deque())
        return decide_window(times, self._clock(), limit)


_ADMIT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


class RedisQuota:
    """Windows shared by every replica through Redis."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str = "promptrollouts:quota:") -> None:
        # Deferred: redis is imported only when REDIS_URL gives the service a client.
        from redis.exceptions import RedisError  # noqa: PLC0415

        self._error: type[Exception] = RedisError
        self._prefix = prefix
        self._admit = client.register_script(_ADMIT)

    async def admit(self, tenant: str, limit: int) -> QuotaDecision:
        member = secrets.token_hex(8)
        try:
            wait_ms = await self._admit(
                keys=[self._prefix + tenant],
                args=[int(WINDOW_SECONDS * 1000), limit, member],
            )
        except self._error as error:
            raise QuotaUnavailableError(type(error).__name__) from error
        if int(wait_ms) == 0:
            return QuotaDecision(True)
        return QuotaDecision(False, int(wait_ms) / 1000)


def build_quota(client: redis.asyncio.Redis | None) -> QuotaStore:
    """Redis windows when the service has a Redis client, else in-process ones."""
    return MemoryQuota() if client is None else RedisQuota(client)
