"""Retry policy tables: Retry-After parsing and formatting, backoff, waits, retryable statuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.llm.resilience.policy import (
    backoff_delay,
    cap_retry_after,
    decide_model_slice,
    format_retry_after,
    is_retryable_status,
    parse_retry_after,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("0", 0.0),
        ("  7 ", 7.0),
        ("120", 120.0),
        ("Wed, 01 Jan 2025 12:00:30 GMT", 30.0),
        ("Wed, 01 Jan 2025 12:01:00 -0000", 60.0),
        ("Wed, 01 Jan 2025 11:00:00 GMT", 0.0),
        ("Wed, 01 Jan 2025 12:00:00 GMT", 0.0),
        ("garbage", None),
        ("", None),
        ("   ", None),
        (None, None),
        ("-5", None),
        ("1.5", None),
        ("+5", None),
        ("1e3", None),
        ("\u00b2", None),
        ("\u0661\u0662", None),
        ("1000000000", 1e9),
        ("0000000000000000000042", 42.0),
        ("9" * 5000, 1e10),
        (
            "Fri, 31 Dec 9999 23:59:59 GMT",
            (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - NOW).total_seconds(),
        ),
        ("Wed, 01 Jan 2025 12:00:30", 30.0),
        ("Wed, 32 Jan 2025 12:00:30 GMT", None),
        ("600 seconds", None),
        ("6\u200b00", None),
    ],
    ids=[
        "delta-seconds",
        "delta-zero",
        "delta-padded",
        "delta-minutes",
        "http-date-30s-ahead",
        "http-date-minus-zero-zone",
        "http-date-past-is-zero",
        "http-date-now-is-zero",
        "garbage",
        "empty",
        "blank",
        "absent",
        "negative",
        "fraction-not-integer",
        "plus-sign",
        "exponent",
        "superscript-two-is-not-a-digit",
        "arabic-indic-digits-are-not-ascii",
        "a-billion-parses-then-is-capped-by-the-caller",
        "leading-zeros",
        "five-thousand-digits-do-not-hang-int",
        "year-9999-date",
        "date-without-zone-is-utc",
        "impossible-date",
        "trailing-words",
        "zero-width-space-inside",
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (2.5, "3"), (30.0, "30"), (-3.0, "1")],
    ids=["zero-is-one", "fraction-is-one", "one", "just-over-one", "ceil", "whole", "negative"],
)
def test_format_retry_after(seconds: float, expected: str) -> None:
    assert format_retry_after(seconds) == expected


@pytest.mark.parametrize(
    ("attempt", "roll", "expected"),
    [
        (1, 0.0, 0.0),
        (1, 0.999999, 0.2 * 0.999999),
        (1, 0.5, 0.1),
        (2, 0.5, 0.2),
        (3, 0.5, 0.4),
        (4, 0.5, 0.8),
        (5, 0.999999, 2.0 * 0.999999),
        (6, 0.999999, 2.0 * 0.999999),
        (30, 0.5, 1.0),
        (0, 0.5, 0.1),
    ],
    ids=[
        "roll-0-is-0",
        "roll-near-1-is-ceiling",
        "first-half",
        "second-doubles",
        "third-doubles",
        "fourth-doubles",
        "capped",
        "stays-capped",
        "far-attempt-capped",
        "attempt-0-as-first",
    ],
)
def test_backoff_delay(attempt: int, roll: float, expected: float) -> None:
    assert backoff_delay(attempt, base=0.2, cap=2.0, roll=roll) == pytest.approx(expected)


@pytest.mark.parametrize("attempt", range(1, 12), ids=lambda n: f"attempt{n}")
@pytest.mark.parametrize("roll", [0.0, 0.25, 0.5, 0.999999], ids=lambda r: f"roll{r}")
def test_backoff_delay_stays_within_full_jitter_bounds(attempt: int, roll: float) -> None:
    ceiling = min(5.0, 0.2 * 2 ** (attempt - 1))
    delay = backoff_delay(attempt, base=0.2, cap=5.0, roll=roll)
    assert 0.0 <= delay < ceiling


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),
        (422, False),
        (429, True),
        (500, True),
        (501, False),
        (502, True),
        (503, True),
        (504, True),
    ],
    ids=str,
)
def test_is_retryable_status(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


@pytest.mark.parametrize(
    ("seconds", "maximum", "expected"),
    [
        (None, 3600.0, None),
        (1.0, 3600.0, 1.0),
        (600.0, 3600.0, 600.0),
        (1e9, 3600.0, 3600.0),
        (3600.0, 3600.0, 3600.0),
        (-4.0, 3600.0, 0.0),
        (600.0, 2.0, 2.0),
    ],
    ids=["absent", "short", "long", "billion-capped", "at-cap", "negative-is-zero", "small-cap"],
)
def test_cap_retry_after(seconds: float | None, maximum: float, expected: float | None) -> None:
    assert cap_retry_after(seconds, maximum) == expected


@pytest.mark.parametrize(
    ("remaining", "models_left", "expected"),
    [
        (20.0, 1, 20.0),
        (20.0, 2, 10.0),
        (30.0, 3, 10.0),
        (19.5, 1, 19.5),
        (12.0, 2, 6.0),
        (0.06, 2, 0.05),
        (0.04, 2, 0.04),
        (0.0, 2, 0.0),
        (-1.0, 1, 0.0),
        (20.0, 0, 20.0),
    ],
    ids=[
        "only-model-gets-everything",
        "primary-of-two-gets-half",
        "primary-of-three-gets-a-third",
        "last-model-gets-what-is-left",
        "second-of-three-after-a-hung-primary",
        "share-never-below-min-attempt",
        "never-more-than-remaining",
        "nothing-left",
        "past-the-deadline",
        "no-models-left-is-one",
    ],
)
def test_decide_model_slice(remaining: float, models_left: int, expected: float) -> None:
    assert decide_model_slice(remaining, models_left, 0.05) == pytest.approx(expected)


def test_slices_of_a_chain_leave_every_later_model_its_share() -> None:
    """A chain of three where every model hangs for its whole slice."""
    remaining, spent = 30.0, []
    for index in range(3):
        share = decide_model_slice(remaining, 3 - index, 0.05)
        spent.append(share)
        remaining -= share
    assert spent == pytest.approx([10.0, 10.0, 10.0])
    assert remaining == pytest.approx(0.0)
