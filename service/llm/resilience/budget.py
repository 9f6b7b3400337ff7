"""A retry budget (pure): retries may add at most a fixed fraction to upstream traffic.

Every first attempt deposits `ratio` tokens; every retry withdraws one. A small
reserve, refilled at `min_per_second`, lets a quiet service still retry. Deposits
never raise the balance above the reserve (at least one retry), so healthy traffic
banks no retries for the next outage. Against an
upstream that always fails, N requests make at most about N·(1 + ratio) + reserve calls.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RetryBudget"]


@dataclass
class RetryBudget:
    """Shared by every request to one upstream."""

    ratio: float = 0.2
    min_per_second: float = 1.0
    reserve: float = 10.0
    balance: float = 10.0
    updated: float | None = None

    def _refill(self, now: float) -> None:
        if self.updated is not None and self.balance < self.reserve:
            elapsed = max(0.0, now - self.updated)
            self.balance = min(self.reserve, self.balance + elapsed * self.min_per_second)
        self.updated = now

    def deposit(self, now: float) -> None:
        """A first attempt was made (healthy traffic banks no more than the reserve)."""
        self._refill(now)
        self.balance = min(max(self.reserve, 1.0), self.balance + self.ratio)

    def try_withdraw(self, now: float) -> bool:
        """Spend one retry if the budget allows it."""
        self._refill(now)
        if self.balance < 1.0:
            return False
        self.balance -= 1.0
        return True
