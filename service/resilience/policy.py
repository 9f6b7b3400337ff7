"""Retry policy (pure): what is retryable, how long to wait, how to read Retry-After."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = [
    "BREAKER_NEUTRAL_STATUSES",
    "RETRYABLE_STATUSES",
    "RETRY_AFTER_STATUSES",
    "backoff_delay",
    "format_retry_after",
    "is_retryable_status",
    "parse_retry_after",
    "plan_wait",
]

#: Statuses worth another attempt: timeouts, throttling and server-side failures.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses whose Retry-After header is honoured.
RETRY_AFTER_STATUSES = frozenset({429, 503})
#: Client errors that say nothing about the upstream's health (not breaker failures).
BREAKER_NEUTRAL_STATUSES = frozenset(range(400, 500)) - {408, 429}


def is_retryable_status(status: int) -> bool:
    """Whether an upstream status deserves another attempt."""
    return status in RETRYABLE_STATUSES


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # RFC 9110 delta-seconds: 1*DIGIT, ASCII only
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def format_retry_after(seconds: float) -> str:
    """A Retry-After value for our own callers: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


def backoff_delay(attempt: int, base: float, cap: float, roll: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^(attempt-1))].

    `attempt` counts the attempts made so far (1 after the first failure);
    `roll` is a uniform number in [0, 1) supplied by the caller.
    """
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return roll * ceiling


def plan_wait(
    backoff: float, retry_after: float | None, remaining: float, min_attempt: float
) -> float | None:
    """Seconds to sleep before the next attempt, or None when it would not fit the deadline.

    The upstream's Retry-After is a floor (never retry earlier than it asked); the
    next attempt must still have `min_attempt` seconds left after the sleep.
    """
    wait = max(backoff, retry_after or 0.0)
    if wait + min_attempt > remaining:
        return None
    return wait
