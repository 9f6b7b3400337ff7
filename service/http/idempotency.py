"""Idempotency-Key support for ``POST /v1/answers``: one component, ``begin / complete / release``.

A request carrying an ``Idempotency-Key`` runs at most once per (caller scope, key):

1. :meth:`Idempotency.begin` validates the key and takes a lease (a :class:`Lease`, with the
   key to send upstream), or returns the stored response (:class:`Replay`), or raises
   ``IdempotencyKeyReusedError`` (422: other body, pinned version or tenant) /
   ``IdempotencyKeyInFlightError`` (409: the first request is still running) /
   ``IdempotencyUnavailableError`` (503: the store cannot be reached; never run twice).
2. :meth:`Idempotency.complete` stores the response, if the caller still holds the lease; a
   response that cannot be stored is logged and counted, never an error (it was sent).
3. :meth:`Idempotency.release` drops the lease (after a failure) so the client may retry.

Leases expire by themselves after ``lease_seconds``, so a crashed or cancelled request never
leaves a key stuck at 409. Stored responses expire after ``ttl_seconds``. The rules (keys,
scopes, fingerprints) are pure, in :mod:`service.http.idempotency_keys`; the stores, which raise
only the service's own errors, are :mod:`service.http.idempotency_memory` (one process) and
:mod:`service.http.idempotency_redis` (shared by replicas).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Protocol

from service.errors import IdempotencyUnavailableError
from service.http.idempotency_keys import (
    BeginResult,
    Replay,
    StoredResponse,
    build_fingerprint,
    build_scope_key,
    build_upstream_key,
    parse_key_header,
)
from service.http.idempotency_memory import MemoryIdempotencyStore
from service.telemetry.metrics import Metrics

__all__ = [
    "Idempotency",
    "IdempotencyStore",
    "Lease",
    "build_idempotency_store",
]

_log = logging.getLogger(__name__)


class IdempotencyStore(Protocol):
    """Leases and stored responses per scope key (see ``build_scope_key``).

    Every method raises ``IdempotencyUnavailableError`` when the store cannot be reached.
    """

    async def begin(self, scope_key: str, fingerprint: str, lease_seconds: float) -> BeginResult:
        """Take a lease or replay; raises Reused (other fingerprint) or InFlight."""
        ...

    async def complete(
        self,
        scope_key: str,
        token: str,
        fingerprint: str,
        response: StoredResponse,
        ttl_seconds: float,
    ) -> bool:
        """Store ``response`` for ``ttl_seconds``; False (and nothing done) if the lease is lost."""
        ...

    async def release(self, scope_key: str, token: str) -> bool:
        """Drop the lease held by ``token``; False (and nothing done) if it is not held."""
        ...

    async def close(self) -> None:
        """Free the store's resources."""
        ...


def build_idempotency_store(redis_url: str | None) -> IdempotencyStore:
    """A Redis store when ``redis_url`` is given (shared by replicas), else a memory store."""
    if redis_url:
        # Deferred: redis is imported only when a Redis URL is given.
        import redis.asyncio  # noqa: PLC0415

        from service.http.idempotency_redis import RedisIdempotencyStore  # noqa: PLC0415

        return RedisIdempotencyStore(redis.asyncio.from_url(redis_url))
    return MemoryIdempotencyStore()


@dataclass(frozen=True)
class Lease:
    """The request holds its key: answer it, then ``complete`` or ``release`` the lease."""

    scope_key: str
    token: str
    fingerprint: str
    #: The Idempotency-Key to send the model: an HMAC of the scope key, the same on retries.
    upstream_key: str


class Idempotency:
    """Idempotency-Keys over a store: scopes, fingerprints, upstream keys, replays, failures."""

    def __init__(
        self,
        store: IdempotencyStore,
        secret: bytes,
        *,
        lease_seconds: float,
        ttl_seconds: float,
        metrics: Metrics,
    ) -> None:
        if not secret:
            raise ValueError("the idempotency secret must not be empty")
        self._store = store
        self._secret = secret
        self._lease_seconds = lease_seconds
        self._ttl_seconds = ttl_seconds
        self._metrics = metrics

    async def begin(
        self,
        header: str,
        *,
        scope: str | None,
        body: bytes,
        pinned_version: str | None = None,
        tenant: str | None = None,
    ) -> Lease | Replay:
        """Take the lease of the key in ``header`` for caller ``scope``, or return its replay.

        Raises ``IdempotencyKeyInvalidError`` (400), ``IdempotencyKeyReusedError`` (422),
        ``IdempotencyKeyInFlightError`` (409) or ``IdempotencyUnavailableError`` (503).
        """
        scope_key = build_scope_key(scope, parse_key_header(header))
        fingerprint = build_fingerprint(body, pinned_version=pinned_version, tenant=tenant)
        begun = await self._store.begin(scope_key, fingerprint, self._lease_seconds)
        if isinstance(begun, Replay):
            self._metrics.idempotent_replays.inc()
            return begun
        upstream_key = build_upstream_key(self._secret, scope_key)
        return Lease(scope_key, begun.token, fingerprint, upstream_key)

    async def complete(self, lease: Lease, response: StoredResponse) -> bool:
        """Store ``response`` for the lease's key; True if it was stored.

        Not stored (the lease expired first, or the store failed) is a warning and
        ``promptrollouts_idempotency_save_failures_total``: the answer was sent, and a retry
        with the same key runs again.
        """
        try:
            saved = await self._store.complete(
                lease.scope_key, lease.token, lease.fingerprint, response, self._ttl_seconds
            )
            reason = "" if saved else "its lease expired first"
        except IdempotencyUnavailableError as error:
            await self.release(lease)
            saved, reason = False, f"the store failed ({error})"
        if not saved:
            self._metrics.idempotency_save_failures.inc()
            _log.warning(
                "answer sent but not stored for its Idempotency-Key: %s; a retry will run again",
                reason,
            )
        return saved

    async def release(self, lease: Lease) -> None:
        """Give the key back; if the store is down, its lease expires on its own."""
        with contextlib.suppress(IdempotencyUnavailableError):
            await self._store.release(lease.scope_key, lease.token)

    async def close(self) -> None:
        """Close the store (the Redis store closes its client)."""
        await self._store.close()
