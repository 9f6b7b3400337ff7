"""Retry policy (pure): what is retryable, how long to wait, how to read Retry-After.

Statuses fall in three groups::

    THROTTLE_STATUS (429)     back-pressure: waited for, retried, never a breaker failure
    RETRYABLE_STATUSES        408, 429, 500, 502, 503, 504: worth another attempt
    REJECTED_STATUSES         other 4xx: our request is wrong; no retry, no fallback
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = [
    "BREAKER_NEUTRAL_STATUSES",
    "REJECTED_STATUSES",
    "RETRYABLE_STATUSES",
    "RETRY_AFTER_STATUSES",
    "THROTTLE_STATUS",
    "backoff_delay",
    "cap_retry_after",
    "decide_model_slice",
    "format_retry_after",
    "is_retryable_status",
    "parse_retry_after",
]

#: Statuses worth another attempt: timeouts, throttling and server-side failures.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses whose Retry-After header is honoured.
RETRY_AFTER_STATUSES = frozenset({429, 503})
#: "Too Many Requests": the upstream is healthy and asks us to slow down.
THROTTLE_STATUS = 429
#: Client errors: the request itself is wrong, so neither a retry nor a fallback can help.
REJECTED_STATUSES = frozenset(range(400, 500)) - {408, 429}
#: Statuses that say nothing about the upstream's health (neither breaker failure nor success).
BREAKER_NEUTRAL_STATUSES = REJECTED_STATUSES | {THROTTLE_STATUS}

#: delta-seconds (RFC 9110: 1*DIGIT, ASCII only).
_DELTA_SECONDS = re.compile(r"[0-9]+")
#: Digits beyond this are absurd (> 3 centuries) and not worth converting.
_MAX_DIGITS = 10


def is_retryable_status(status: int) -> bool:
    """Whether an upstream status deserves another attempt."""
    return status in RETRYABLE_STATUSES


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); None if unusable.

    Negative numbers, garbage and non-ASCII digits are unusable; a date in the past
    means 0. Absurdly long values come back large (callers cap them, `cap_retry_after`).
    """
    if value is None:
        return None
    text = value.strip()
    if not text or not text.isascii():
        return None
    if _DELTA_SECONDS.fullmatch(text):
        digits = text.lstrip("0")
        if len(digits) > _MAX_DIGITS:  # int() of thousands of digits is slow or refused
            return float(10**_MAX_DIGITS)
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def cap_retry_after(seconds: float | None, maximum: float) -> float | None:
    """An upstream's wait, bounded by our documented maximum (None stays None)."""
    if seconds is None:
        return None
    return min(max(0.0, seconds), maximum)


def format_retry_after(seconds: float) -> str:
    """A Retry-After value for our own callers: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


def backoff_delay(attempt: int, base: float, cap: float, roll: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^(attempt-1))].

    `attempt` counts the attempts made so far (1 after the first failure);
    `roll` is a uniform number in [0, 1) supplied by the caller.
    """
    ceiling = min(cap, base * 2.0 ** max(0, min(attempt - 1, 64)))
    return roll * ceiling


def decide_model_slice(remaining: float, models_left: int, min_attempt: float) -> float:
    """Seconds the next model in a fallback chain may use, out of `remaining`.

    Each model gets an equal share of what is left, so a hung model cannot starve
    the ones after it; the last model gets everything. Time a model does not use
    (it failed fast or answered) flows to the next ones, because the share is
    taken again from what remains when each model starts. A share is never
    smaller than `min_attempt` (nor larger than `remaining`).
    """
    if remaining <= 0:
        return 0.0
    share = remaining / max(1, models_left)
    return min(remaining, max(share, min_attempt))
