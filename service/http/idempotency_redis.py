"""The idempotency store shared by replicas, in Redis; it raises only the service's errors."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio
from redis.exceptions import RedisError

from service.errors import IdempotencyUnavailableError
from service.http.idempotency_keys import (
    BeginResult,
    Record,
    Started,
    StoredResponse,
    decide_existing,
    to_milliseconds,
)

__all__ = ["RedisIdempotencyStore"]

_BEGIN = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
"""

_COMPLETE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local record = cjson.decode(raw)
if record.state ~= 'in_flight' or record.token ~= ARGV[1] or record.fingerprint ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
"""

_RELEASE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local record = cjson.decode(raw)
if record.state ~= 'in_flight' or record.token ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


class RedisIdempotencyStore:
    """A store shared by every replica: JSON values with Redis-side expiry (PX).

    ``begin`` is one atomic ``SET NX PX`` (then ``GET`` of the existing value, in the same
    script); ``complete`` and ``release`` compare the lease token in a script before they
    write. ``close`` closes ``client``. A Redis failure (unreachable, timed out, an error
    reply) is raised as the service's :class:`IdempotencyUnavailableError` (503), so no
    caller needs to know this store is Redis.
    """

    def __init__(self, client: redis.asyncio.Redis, prefix: str = "promptrollouts:idem:") -> None:
        self._client = client
        self._prefix = prefix
        self._begin = client.register_script(_BEGIN)
        self._complete = client.register_script(_COMPLETE)
        self._release = client.register_script(_RELEASE)

    async def begin(self, scope_key: str, fingerprint: str, lease_seconds: float) -> BeginResult:
        token = secrets.token_urlsafe(16)
        value = Record(fingerprint, token).to_json()
        lease_ms = to_milliseconds(lease_seconds)
        async with _unavailable_on_redis_error():
            existing = await self._begin(keys=[self._prefix + scope_key], args=[value, lease_ms])
        if existing is None:
            return Started(token)
        return decide_existing(Record.from_json(existing), fingerprint)

    async def complete(
        self,
        scope_key: str,
        token: str,
        fingerprint: str,
        response: StoredResponse,
        ttl_seconds: float,
    ) -> bool:
        value = Record(fingerprint, token, response).to_json()
        ttl_ms = to_milliseconds(ttl_seconds)
        async with _unavailable_on_redis_error():
            done = await self._complete(
                keys=[self._prefix + scope_key], args=[token, fingerprint, value, ttl_ms]
            )
        return bool(done)

    async def release(self, scope_key: str, token: str) -> bool:
        async with _unavailable_on_redis_error():
            done = await self._release(keys=[self._prefix + scope_key], args=[token])
        return bool(done)

    async def close(self) -> None:
        await self._client.aclose()


@asynccontextmanager
async def _unavailable_on_redis_error() -> AsyncIterator[None]:
    """Raise a Redis failure as the service's own 503 error (named by type, never by URL)."""
    try:
        yield
    except RedisError as error:
        raise IdempotencyUnavailableError(f"idempotency store: {type(error).__name__}") from error
