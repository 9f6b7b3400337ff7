"""The feedback store shared by replicas, in Redis; it raises only the service's errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio
from redis.exceptions import RedisError

from service.errors import FeedbackUnavailableError
from service.http.feedback_records import Answered

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "RedisFeedbackStore"]

#: Longest wait for one Redis command before the store gives up (503, or a counted miss).
DEFAULT_TIMEOUT_SECONDS = 1.0

# Swap the score of an existing record, keeping its expiry; return the record as it was.
_RATE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local record = cjson.decode(raw)
record.score = tonumber(ARGV[1])
redis.call('SET', KEYS[1], cjson.encode(record), 'KEEPTTL')
return raw
"""


class RedisFeedbackStore:
    """Remembered answers as JSON values with Redis-side expiry (PX).

    ``remember`` is ``SET NX PX`` (the first answer with an id keeps it); ``rate`` swaps the
    score in one script and returns the record as it was, so two concurrent ratings of one
    answer see each other (one counts, the other replaces). A Redis failure (unreachable,
    an error reply, or no answer within ``timeout_seconds``) is raised as the service's
    :class:`FeedbackUnavailableError`. ``close`` does not close ``client`` (shared).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        prefix: str = "promptrollouts:feedback:",
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._timeout = timeout_seconds
        self._rate = client.register_script(_RATE)

    async def remember(self, key: str, answered: Answered, ttl_seconds: float) -> bool:
        ttl_ms = max(1, round(ttl_seconds * 1000))
        async with self._unavailable_on_failure():
            stored = await self._client.set(
                self._prefix + key, answered.to_json(), nx=True, px=ttl_ms
            )
        return bool(stored)

    async def fetch(self, key: str) -> Answered | None:
        async with self._unavailable_on_failure():
            raw = await self._client.get(self._prefix + key)
        return None if raw is None else _decode(raw)

    async def rate(self, key: str, score: float) -> Answered | None:
        async with self._unavailable_on_failure():
            raw = await self._rate(keys=[self._prefix + key], args=[repr(float(score))])
        return None if raw is None else _decode(raw)

    async def close(self) -> None:
        """Nothing to free: the client is the app's shared one."""

    @asynccontextmanager
    async def _unavailable_on_failure(self) -> AsyncIterator[None]:
        """Raise a Redis failure or timeout as the service's 503 (named by type, never URL)."""
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except RedisError as error:
            raise FeedbackUnavailableError(f"feedback store: {type(error).__name__}") from error
        except TimeoutError as error:
            raise FeedbackUnavailableError(
                f"feedback store: no answer within {self._timeout:g} s"
            ) from error


def _decode(raw: str | bytes) -> Answered:
    try:
        return Answered.from_json(raw)
    except (ValueError, KeyError, TypeError) as error:
        raise FeedbackUnavailableError("feedback store: a record could not be read") from error
