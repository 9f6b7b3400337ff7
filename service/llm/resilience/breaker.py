"""A circuit breaker per upstream (pure state machine; the caller passes `now`).

::

    CLOSED ──(N consecutive failures, or failure rate ≥ R over W s with ≥ M calls)──► OPEN
    OPEN ──(cool-down elapsed)──► HALF_OPEN: at most P probes in flight
    HALF_OPEN ──(P probes succeeded)──► CLOSED
    HALF_OPEN ──(any probe failed)──► OPEN (cool-down starts again)
    any state ──(hold: the upstream asked for a pause longer than a request can wait)──►
        OPEN until that pause ends (not the cool-down), then HALF_OPEN as usual

Client errors (4xx other than 408) and throttling (429) are neither successes nor
failures: back-pressure is not ill health.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BreakerConfig", "BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    """Where a breaker is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerConfig(BaseModel):
    """When a breaker opens and how it recovers (``BREAKER_*`` variables, see
    :mod:`service.llm.resilience.config`)."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)

    consecutive_failures: int = Field(
        default=5,
        ge=1,
        validation_alias="breaker_consecutive_failures",
        description="Consecutive failures that open a model's breaker.",
    )
    failure_rate: float = Field(
        default=0.5,
        gt=0,
        le=1,
        validation_alias="breaker_failure_rate",
        description="Failure ratio over the window that opens it.",
    )
    window_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias="breaker_window_seconds",
        description="Failure-rate window.",
    )
    min_calls: int = Field(
        default=10,
        ge=1,
        validation_alias="breaker_min_calls",
        description="Calls in the window before the rate counts.",
    )
    cool_down_seconds: float = Field(
        default=15.0,
        gt=0,
        validation_alias="breaker_cool_down_seconds",
        description="Open time before half-open probes.",
    )
    half_open_probes: int = Field(
        default=2,
        ge=1,
        validation_alias="breaker_half_open_probes",
        description="Probes that must succeed to close; one failure reopens.",
    )


@dataclass
class CircuitBreaker:
    """One upstream's breaker."""

    config: BreakerConfig = field(default_factory=BreakerConfig)
    state: BreakerState = BreakerState.CLOSED
    opened_at: float = 0.0
    #: When an open breaker lets probes through again (cool-down, or an upstream's pause).
    reopen_at: float = 0.0
    consecutive: int = 0
    probes_in_flight: int = 0
    probe_successes: int = 0
    transitions: int = 0
    _calls: deque[tuple[float, bool]] = field(default_factory=deque)

    def allow(self, now: float) -> bool:
        """Whether a call may go upstream now (a half-open allowance reserves a probe slot)."""
        if self.state is BreakerState.OPEN:
            if now < self.reopen_at:
                return False
            self._move(BreakerState.HALF_OPEN)
            self.probes_in_flight = 0
            self.probe_successes = 0
        if self.state is BreakerState.HALF_OPEN:
            if self.probes_in_flight + self.probe_successes >= self.config.half_open_probes:
                return False
            self.probes_in_flight += 1
        return True

    def retry_in(self, now: float) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.reopen_at - now)

    def hold(self, now: float, seconds: float) -> None:
        """The upstream asked for a pause of `seconds`: stay open until it ends.

        A pause never shortens one already in force; the cool-down does not apply
        (the upstream said when to come back). Afterwards, half-open probes as usual.
        """
        until = now + max(0.0, seconds)
        if self.state is BreakerState.OPEN and self.reopen_at >= until:
            return
        self._move(BreakerState.OPEN)
        self.opened_at = now
        self.reopen_at = until
        self.probes_in_flight = 0
        self.probe_successes = 0

    def record_success(self, now: float) -> None:
        """A call succeeded."""
        if self.state is BreakerState.HALF_OPEN:
            self.probes_in_flight = max(0, self.probes_in_flight - 1)
            self.probe_successes += 1
            if self.probe_successes >= self.config.half_open_probes:
                self._close()
            return
        self.consecutive = 0
        self._remember(now, failed=False)

    def record_failure(self, now: float) -> None:
        """A call failed in a way that says the upstream is unhealthy."""
        if self.state is BreakerState.HALF_OPEN:
            self._open(now)
            return
        if self.state is BreakerState.OPEN:
            return
        self.consecutive += 1
        self._remember(now, failed=True)
        if self.consecutive >= self.config.consecutive_failures or self._rate_exceeded():
            self._open(now)

    def record_neutral(self) -> None:
        """A call ended in a way that says nothing about health (e.g. our own 400)."""
        if self.state is BreakerState.HALF_OPEN:
            self.probes_in_flight = max(0, self.probes_in_flight - 1)

    def _remember(self, now: float, *, failed: bool) -> None:
        self._calls.append((now, failed))
        horizon = now - self.config.window_seconds
        while self._calls and self._calls[0][0] < horizon:
            self._calls.popleft()

    def _rate_exceeded(self) -> bool:
        if len(self._calls) < self.config.min_calls:
            return False
        failures = sum(1 for _, failed in self._calls if failed)
        return failures / len(self._calls) >= self.config.failure_rate

    def _open(self, now: float) -> None:
        self._move(BreakerState.OPEN)
        self.opened_at = now
        self.reopen_at = now + self.config.cool_down_seconds
        self.probes_in_flight = 0
        self.probe_successes = 0

    def _close(self) -> None:
        self._move(BreakerState.CLOSED)
        self.consecutive = 0
        self._calls.clear()

    def _move(self, state: BreakerState) -> None:
        if state is not self.state:
            self.state = state
            self.transitions += 1
