"""The in-process feedback store: one replica's remembered answers, bounded."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from service.http.feedback_records import Answered

__all__ = ["DEFAULT_MAX_ENTRIES", "MemoryFeedbackStore"]

#: Answers remembered per process at most (about 200 bytes each); the oldest go first.
DEFAULT_MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class _Entry:
    answered: Answered
    expires_at: float


class MemoryFeedbackStore:
    """A dict with clock-based expiry and at most ``max_entries`` answers.

    When full, the oldest answer is forgotten (a rating for it is then a 404), so a flood
    of answers costs bounded memory. Every method runs without awaiting, so a rating is
    atomic among the coroutines of this process. Not shared between replicas: set
    REDIS_URL for that.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # insertion order = age
        #: Answers forgotten early because the store was full.
        self.evicted = 0

    async def remember(self, key: str, answered: Answered, ttl_seconds: float) -> bool:
        now = self._drop_expired()
        if key in self._entries:
            return False  # the first answer with an id keeps it
        while len(self._entries) >= self._max_entries:
            self._entries.popitem(last=False)
            self.evicted += 1
        self._entries[key] = _Entry(answered, now + ttl_seconds)
        return True

    async def fetch(self, key: str) -> Answered | None:
        self._drop_expired()
        entry = self._entries.get(key)
        return None if entry is None else entry.answered

    async def rate(self, key: str, score: float) -> Answered | None:
        self._drop_expired()
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries[key] = replace(entry, answered=replace(entry.answered, score=score))
        return entry.answered

    async def close(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop_expired(self) -> float:
        now = self._clock()
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.expires_at > now:
                break
            del self._entries[key]
        return now
