"""The in-process idempotency store: one replica's leases and stored responses."""

from __future__ import annotations

import heapq
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from service.http.idempotency_keys import (
    BeginResult,
    Record,
    Started,
    StoredResponse,
    decide_existing,
    to_milliseconds,
)

__all__ = ["MemoryIdempotencyStore"]


@dataclass(frozen=True)
class _Entry:
    record: Record
    expires_at: float


class MemoryIdempotencyStore:
    """One process's store: a dict with clock-based expiry and at most ``max_entries`` keys.

    When full, expired entries go first, then the oldest. Not shared between replicas.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, _Entry] = {}  # insertion order = age
        self._expiries: list[tuple[float, int, str, _Entry]] = []  # heap, stale items skipped
        self._pushes = 0

    async def begin(self, scope_key: str, fingerprint: str, lease_seconds: float) -> BeginResult:
        lease_ms = to_milliseconds(lease_seconds)
        now = self._drop_expired()
        entry = self._entries.get(scope_key)
        if entry is not None:
            return decide_existing(entry.record, fingerprint)
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        token = secrets.token_urlsafe(16)
        self._put(scope_key, _Entry(Record(fingerprint, token), now + lease_ms / 1000))
        return Started(token)

    async def complete(
        self,
        scope_key: str,
        token: str,
        fingerprint: str,
        response: StoredResponse,
        ttl_seconds: float,
    ) -> bool:
        ttl_ms = to_milliseconds(ttl_seconds)
        now = self._drop_expired()
        if not self._holds(scope_key, token, fingerprint):
            return False
        self._put(scope_key, _Entry(Record(fingerprint, token, response), now + ttl_ms / 1000))
        return True

    async def release(self, scope_key: str, token: str) -> bool:
        self._drop_expired()
        if not self._holds(scope_key, token, None):
            return False
        del self._entries[scope_key]
        return True

    async def close(self) -> None:
        self._entries.clear()
        self._expiries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _holds(self, scope_key: str, token: str, fingerprint: str | None) -> bool:
        entry = self._entries.get(scope_key)
        return (
            entry is not None
            and entry.record.response is None
            and secrets.compare_digest(entry.record.token, token)
            and fingerprint in (None, entry.record.fingerprint)
        )

    def _put(self, scope_key: str, entry: _Entry) -> None:
        self._entries[scope_key] = entry
        self._pushes += 1
        heapq.heappush(self._expiries, (entry.expires_at, self._pushes, scope_key, entry))
        if len(self._expiries) > 2 * len(self._entries) + 1024:  # drop stale heap items
            self._expiries = [item for item in self._expiries if self._is_current(item)]
            heapq.heapify(self._expiries)

    def _is_current(self, item: tuple[float, int, str, _Entry]) -> bool:
        return self._entries.get(item[2]) is item[3]

    def _drop_expired(self) -> float:
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            item = heapq.heappop(self._expiries)
            if self._is_current(item):
                del self._entries[item[2]]
        return now
