"""The resilience layer's events (attempts, retries, breakers, rate limits), counted.

:class:`MetricsObserver` is the ``ResilienceObserver`` the service hands to its resilient
model client; the families it feeds live in :class:`~service.telemetry.metrics.Metrics`.
"""

from __future__ import annotations

from service.llm.resilience.breaker import BreakerState
from service.telemetry.metrics import Metrics

__all__ = ["BREAKER_STATE_VALUES", "MetricsObserver"]

#: The numeric value of each breaker state in ``promptrollouts_circuit_breaker_state``.
BREAKER_STATE_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class MetricsObserver:
    """The resilience layer's events, counted (a ResilienceObserver)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def attempt(self, model: str, outcome: str) -> None:
        """An upstream attempt ended: "ok" is recorded as status 200."""
        status = "200" if outcome == "ok" else outcome
        self._metrics.upstream_requests.labels(model, status).inc()

    def retry(self, model: str, wait: float) -> None:
        """A retry will follow."""
        self._metrics.upstream_retries.labels(model).inc()

    def breaker(self, model: str, state: BreakerState) -> None:
        """A breaker changed state."""
        self._metrics.breaker_state.labels(model).set(BREAKER_STATE_VALUES[state])

    def rate_limit(self, model: str, waited: float, rejected: bool) -> None:
        """A request waited for, or was refused, rate-limit capacity."""
        if rejected:
            self._metrics.rate_limit_rejections.labels(model).inc()
        else:
            self._metrics.rate_limit_waits.labels(model).inc()
            self._metrics.rate_limit_wait_seconds.labels(model).inc(waited)

    def throttled(self, model: str, retry_after: float | None) -> None:
        """The upstream answered 429."""
        self._metrics.upstream_throttled.labels(model).inc()
