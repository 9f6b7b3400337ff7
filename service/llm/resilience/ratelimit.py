"""Requests- and tokens-per-minute limits per upstream (token buckets; pure, `now` passed in)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenBucket", "UpstreamLimiter"]


@dataclass
class TokenBucket:
    """`per_minute` units a minute, bursting to a minute's worth; 0 means unlimited.

    A reservation takes units now and says how long to wait until they exist; the
    balance may go negative (a queue of reservations). Corrections after the fact
    (actual token usage) adjust the balance either way.
    """

    per_minute: float
    balance: float = 0.0
    updated: float | None = None

    def _refill(self, now: float) -> None:
        if self.updated is None:
            self.balance = self.per_minute
        else:
            elapsed = max(0.0, now - self.updated)
            self.balance = min(self.per_minute, self.balance + elapsed * self.per_minute / 60)
        self.updated = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` units would be available (0 if now), without taking them."""
        if self.per_minute <= 0:
            return 0.0
        self._refill(now)
        shortfall = min(amount, self.per_minute) - self.balance
        return max(0.0, shortfall * 60 / self.per_minute)

    def take(self, amount: float, now: float) -> None:
        """Take `amount` units (after a successful reservation check)."""
        if self.per_minute > 0:
            self._refill(now)
            self.balance -= min(amount, self.per_minute)

    def adjust(self, delta: float) -> None:
        """Give back (positive) or charge (negative) units, e.g. actual minus estimated tokens."""
        if self.per_minute > 0:
            self.balance = min(self.per_minute, self.balance + delta)


@dataclass
class UpstreamLimiter:
    """RPM and TPM buckets of one upstream."""

    requests: TokenBucket
    tokens: TokenBucket

    @classmethod
    def build(cls, rpm: float, tpm: float) -> UpstreamLimiter:
        """Limits of `rpm` requests and `tpm` tokens a minute (0 = unlimited)."""
        return cls(TokenBucket(rpm), TokenBucket(tpm))

    def reserve(self, estimated_tokens: int, now: float, max_wait: float) -> float | None:
        """Reserve one request and its tokens: seconds to wait, or None if over `max_wait`."""
        wait = max(self.requests.wait_for(1, now), self.tokens.wait_for(estimated_tokens, now))
        if wait > max_wait:
            return None
        self.requests.take(1, now)
        self.tokens.take(estimated_tokens, now)
        return wait

    def retry_in(self, estimated_tokens: int, now: float) -> float:
        """Seconds until a reservation could go through without waiting."""
        return max(self.requests.wait_for(1, now), self.tokens.wait_for(estimated_tokens, now))

    def correct(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Settle the token estimate against the usage the upstream reported."""
        taken = min(estimated_tokens, self.tokens.per_minute)  # what reserve() took (clamped)
        self.tokens.adjust(taken - actual_tokens)
