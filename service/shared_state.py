"""What replicas share through Redis when ``REDIS_URL`` is set, in memory otherwise.

Idempotency keys, feedback and (in :mod:`service.resources`) tenant quotas. redis and the
Redis stores are imported only when a Redis URL is set: ~0.13 s of start-up otherwise
(``tests/architecture/test_lazy_imports.py``).
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

from service.http.feedback import Feedback, FeedbackStore
from service.http.feedback_memory import MemoryFeedbackStore
from service.http.idempotency import Idempotency, IdempotencyStore
from service.http.idempotency_memory import MemoryIdempotencyStore
from service.settings import Settings
from service.telemetry.metrics import Metrics
from service.telemetry.request_log import ContentMode

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["build_feedback", "build_idempotency", "build_idempotency_secret", "open_redis"]

_log = logging.getLogger(__name__)


def build_idempotency(
    settings: Settings, client: redis.asyncio.Redis | None, metrics: Metrics
) -> Idempotency:
    """Idempotency keys in Redis when there is a client (shared by replicas), else in memory."""
    store: IdempotencyStore = (
        MemoryIdempotencyStore() if client is None else _redis_idempotency(client)
    )
    return Idempotency(
        store,
        build_idempotency_secret(settings),
        lease_seconds=settings.idempotency_lease_seconds,
        ttl_seconds=settings.idempotency_ttl_seconds,
        metrics=metrics,
    )


def _redis_idempotency(client: redis.asyncio.Redis) -> IdempotencyStore:
    """The idempotency store shared by replicas (imported only with REDIS_URL)."""
    from service.http.idempotency_redis import RedisIdempotencyStore  # noqa: PLC0415

    return RedisIdempotencyStore(client)


def build_feedback(
    settings: Settings, client: redis.asyncio.Redis | None, metrics: Metrics
) -> Feedback:
    """Feedback over Redis when REDIS_URL is set (any replica takes a rating), else in memory."""
    if client is None:
        store: FeedbackStore = MemoryFeedbackStore()
    else:
        # Deferred, like every Redis module: redis is imported only when REDIS_URL is set.
        from service.http.feedback_redis import RedisFeedbackStore  # noqa: PLC0415

        store = RedisFeedbackStore(client)
    return Feedback(
        store,
        ttl_seconds=settings.feedback_ttl,
        metrics=metrics,
        log_content=ContentMode(settings.log_content),
    )


def open_redis(url: str | None) -> redis.asyncio.Redis | None:
    """One client for everything replicas share (idempotency keys, tenant quotas, feedback)."""
    if not url:
        return None
    # Deferred: redis is imported only when REDIS_URL is set (~0.13 s of start-up otherwise).
    import redis.asyncio  # noqa: PLC0415

    return redis.asyncio.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)


def build_idempotency_secret(settings: Settings) -> bytes:
    """IDEMPOTENCY_SECRET, or a random one for this process (logged: replicas need one)."""
    if settings.idempotency_secret is not None:
        return settings.idempotency_secret.get_secret_value().encode()
    if settings.redis_url:
        _log.warning(
            "IDEMPOTENCY_SECRET is unset: generated one for this process. Replicas sharing "
            "REDIS_URL must all set the same IDEMPOTENCY_SECRET, or a retry served by another "
            "replica sends the model a different Idempotency-Key"
        )
    return secrets.token_bytes(32)
