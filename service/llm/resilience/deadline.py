"""One deadline per request, created when the request arrives and passed down to every stage.

The deadline is an instant on a monotonic clock (``time.monotonic`` in the service;
tests pass their own). Queueing, embedding, retrieval, rate-limit waits, attempts,
backoff sleeps and fallbacks all spend the same time; nothing restarts the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Deadline"]


@dataclass(frozen=True)
class Deadline:
    """The instant `at` by which a request must be answered, on `clock`."""

    at: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def after(
        cls,
        seconds: float,
        *,
        start: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Deadline:
        """The deadline `seconds` after `start` (default: now on `clock`)."""
        begin = clock() if start is None else start
        return cls(begin + max(0.0, seconds), clock)

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - self.clock()

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.remaining() <= 0
