"""The resilience layer's configuration and its observer hooks (no behaviour)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from service.resilience.breaker import BreakerConfig, BreakerState

__all__ = ["ResilienceConfig", "ResilienceObserver", "SilentObserver"]


@dataclass(frozen=True)
class ResilienceConfig:
    """Every knob of the resilience layer (from Settings)."""

    max_attempts: int = 3
    attempt_timeout: float = 10.0
    max_deadline: float = 60.0
    min_attempt: float = 0.05
    backoff_base: float = 0.2
    backoff_cap: float = 5.0
    default_retry_after: float = 1.0
    #: Attempts per model that may end in 429, on top of `max_attempts`.
    max_throttled_attempts: int = 8
    #: The longest upstream Retry-After we honour or pass on; longer values are cut to it.
    retry_after_max: float = 3600.0
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    budget_ratio: float = 0.2
    budget_min_per_second: float = 1.0
    budget_reserve: float = 10.0
    rpm: float = 0.0
    tpm: float = 0.0
    #: Per-model overrides of (rpm, tpm).
    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)


class ResilienceObserver(Protocol):
    """Hooks for metrics and logs; every method must be cheap and must not raise."""

    def attempt(self, model: str, outcome: str) -> None:
        """An upstream attempt ended: "ok", an HTTP status, or a failure kind."""

    def retry(self, model: str, wait: float) -> None:
        """A retry will follow after `wait` seconds."""

    def breaker(self, model: str, state: BreakerState) -> None:
        """A model's breaker is now in `state`."""

    def rate_limit(self, model: str, waited: float, rejected: bool) -> None:
        """A request waited for (or was refused) rate-limit capacity."""

    def throttled(self, model: str, retry_after: float | None) -> None:
        """The upstream answered 429 (with its capped Retry-After, if any)."""


class SilentObserver:
    """An observer that records nothing."""

    def attempt(self, model: str, outcome: str) -> None:
        pass

    def retry(self, model: str, wait: float) -> None:
        pass

    def breaker(self, model: str, state: BreakerState) -> None:
        pass

    def rate_limit(self, model: str, waited: float, rejected: bool) -> None:
        pass

    def throttled(self, model: str, retry_after: float | None) -> None:
        pass
