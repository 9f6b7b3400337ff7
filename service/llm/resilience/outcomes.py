"""What an attempt's failure means and what one request went through (pure).

The classification (:func:`is_retryable`, :func:`is_breaker_failure`, …) decides how
:class:`service.llm.resilience.caller.ResilientChatModel` treats an UpstreamError;
:class:`Tally` collects a request's retries, Retry-After hints and reasons, and
:func:`build_failure` turns it into the error for a request no model answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.errors import RateLimitedError, UpstreamError, UpstreamUnavailableError
from service.llm.resilience.breaker import CircuitBreaker
from service.llm.resilience.budget import RetryBudget
from service.llm.resilience.config import ResilienceConfig
from service.llm.resilience.policy import (
    BREAKER_NEUTRAL_STATUSES,
    REJECTED_STATUSES,
    THROTTLE_STATUS,
    is_retryable_status,
)
from service.llm.resilience.ratelimit import UpstreamLimiter

__all__ = [
    "Tally",
    "Tries",
    "UpstreamState",
    "build_failure",
    "build_upstream_state",
    "is_breaker_failure",
    "is_rejection",
    "is_retryable",
    "is_throttle",
]

_RETRYABLE_KINDS = frozenset({"timeout", "connect", "reset", "malformed"})


def is_retryable(error: UpstreamError) -> bool:
    """Whether another attempt at the same upstream might succeed."""
    if error.kind == "status":
        return error.status is not None and is_retryable_status(error.status)
    return error.kind in _RETRYABLE_KINDS


def is_breaker_failure(error: UpstreamError) -> bool:
    """Whether the failure says the upstream is unhealthy (our own 4xx and 429 do not)."""
    return not (error.kind == "status" and error.status in BREAKER_NEUTRAL_STATUSES)


def is_rejection(error: UpstreamError) -> bool:
    """Whether the upstream refused the request itself (a 4xx other than 408 and 429)."""
    return error.kind == "status" and error.status in REJECTED_STATUSES


def is_throttle(error: BaseException | None) -> bool:
    """Whether the upstream asked us to slow down (429)."""
    return isinstance(error, UpstreamError) and error.status == THROTTLE_STATUS


@dataclass
class UpstreamState:
    """Per-model state shared by every request."""

    breaker: CircuitBreaker
    limiter: UpstreamLimiter
    budget: RetryBudget


@dataclass
class Tally:
    """What one request went through."""

    retries: int = 0
    hints: list[float] = field(default_factory=list)
    upstream_failed: bool = False
    reasons: list[str] = field(default_factory=list)


@dataclass
class Tries:
    """Attempts at one model so far, by kind (429s have their own allowance)."""

    failures: int = 0
    throttled: int = 0


def build_upstream_state(config: ResilienceConfig, model: str) -> UpstreamState:
    """A fresh breaker, limiter and retry budget for `model`, as `config` says."""
    rpm, tpm = config.limits_of(model)
    return UpstreamState(
        CircuitBreaker(config.breaker),
        UpstreamLimiter.build(rpm, tpm),
        RetryBudget(
            ratio=config.budget_ratio,
            min_per_second=config.budget_min_per_second,
            reserve=config.budget_reserve,
            balance=config.budget_reserve,
        ),
    )


def build_failure(
    tally: Tally, default_retry_after: float
) -> RateLimitedError | UpstreamUnavailableError:
    """The error for a request no model answered, with the soonest sensible Retry-After."""
    retry_after = min(tally.hints) if tally.hints else default_retry_after
    retry_after = max(retry_after, default_retry_after)
    detail = "; ".join(tally.reasons) or "no model could be tried"
    if not tally.upstream_failed:
        return RateLimitedError(f"rate limited: {detail}", retry_after)
    return UpstreamUnavailableError(f"no model answered: {detail}", retry_after)
