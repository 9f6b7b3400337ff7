"""Token buckets and the per-upstream limiter, with time passed in."""

from __future__ import annotations

import math

import pytest

from service.llm.resilience.ratelimit import TokenBucket, UpstreamLimiter

FOREVER = math.inf


@pytest.mark.parametrize(
    ("per_minute", "takes", "amount", "now", "expected"),
    [
        (0, [(10**9, 0.0)], 10**9, 0.0, 0.0),
        (60, [], 60, 0.0, 0.0),
        (60, [(60, 0.0)], 1, 0.0, 1.0),
        (60, [(59, 0.0)], 1, 0.0, 0.0),
        (60, [(60, 0.0)], 1, 0.5, 0.5),
        (60, [(60, 0.0)], 1, 1.0, 0.0),
        (60, [(60, 0.0)], 60, 30.0, 30.0),
        (60, [(60, 0.0)], 60, 600.0, 0.0),
        (60, [(60, 0.0), (60, 600.0)], 1, 600.0, 1.0),
        (6, [(6, 0.0)], 1, 0.0, 10.0),
        (60, [(60, 0.0), (60, 0.0)], 1, 0.0, 61.0),
        (100, [], 500, 0.0, 0.0),
        (100, [(100, 0.0)], 500, 0.0, 60.0),
        (60, [(60, 10.0)], 1, 5.0, 1.0),
    ],
    ids=[
        "unlimited-never-waits",
        "fresh-bucket-holds-a-minute",
        "burst-spent",
        "burst-has-one-left",
        "refill-half-a-unit",
        "refill-one-unit",
        "refill-half-a-minute",
        "refill-stops-at-a-minute",
        "idle-never-banks-more-than-a-minute",
        "slow-rate",
        "taken-past-zero-queues",
        "oversized-clamped-on-full-bucket",
        "oversized-clamped-never-forever",
        "clock-going-back-refills-nothing",
    ],
)
def test_bucket_wait_for(
    per_minute: float,
    takes: list[tuple[float, float]],
    amount: float,
    now: float,
    expected: float,
) -> None:
    bucket = TokenBucket(per_minute)
    for taken, at in takes:
        bucket.take(taken, at)
    assert bucket.wait_for(amount, now) == pytest.approx(expected)


def test_wait_for_does_not_take() -> None:
    bucket = TokenBucket(60)
    for _ in range(5):
        assert bucket.wait_for(60, 0.0) == 0.0
    bucket.take(60, 0.0)
    assert bucket.wait_for(1, 0.0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("per_minute", "delta", "expected_wait"),
    [
        (0, -(10**6), 0.0),
        (60, 30, 0.0),
        (60, 100, 0.0),
        (60, -30, 60.0),
        (60, -60, 90.0),
    ],
    ids=[
        "unlimited-ignores",
        "give-back",
        "give-back-capped-at-a-minute",
        "charge-extra",
        "charge-a-minute",
    ],
)
def test_bucket_adjust(per_minute: float, delta: float, expected_wait: float) -> None:
    bucket = TokenBucket(per_minute)
    bucket.take(30, 0.0)
    bucket.adjust(delta)
    # A full minute's capacity is needed: wait = shortfall over the rate.
    assert bucket.wait_for(per_minute, 0.0) == pytest.approx(expected_wait)


def test_adjust_never_banks_more_than_a_minute() -> None:
    bucket = TokenBucket(60)
    bucket.take(1, 0.0)
    bucket.adjust(1000)
    bucket.take(60, 0.0)
    assert bucket.wait_for(1, 0.0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("rpm", "tpm", "reservations", "expected"),
    [
        (0, 0, [(10**6, 0.0, 0.0)] * 5, [0.0] * 5),
        (3, 0, [(1, 0.0, FOREVER)] * 5, [0.0, 0.0, 0.0, 20.0, 40.0]),
        (3, 0, [(1, 0.0, 0.0)] * 5, [0.0, 0.0, 0.0, None, None]),
        (3, 0, [(1, 0.0, 0.0)] * 3 + [(1, 0.0, 19.9), (1, 0.0, 20.0)], [0, 0, 0, None, 20]),
        (3, 0, [(1, 0.0, 0.0)] * 3 + [(1, 10.0, 0.0), (1, 20.0, 0.0)], [0, 0, 0, None, 0]),
        (0, 100, [(60, 0.0, FOREVER), (60, 0.0, FOREVER)], [0.0, 12.0]),
        (0, 100, [(60, 0.0, 0.0), (60, 0.0, 0.0), (40, 0.0, 0.0)], [0.0, None, 0.0]),
        (10, 100, [(100, 0.0, FOREVER), (10, 0.0, FOREVER)], [0.0, 6.0]),
        (1, 100, [(10, 0.0, FOREVER), (10, 0.0, FOREVER)], [0.0, 60.0]),
        (0, 100, [(10**6, 0.0, FOREVER)] * 3, [0.0, 60.0, 120.0]),
    ],
    ids=[
        "unlimited",
        "rpm-burst-then-queue",
        "rpm-refused-past-max-wait",
        "rpm-max-wait-boundary",
        "rpm-refill-over-time",
        "tpm-waits-for-tokens",
        "tpm-refusal-takes-nothing",
        "wait-is-the-longer-of-tpm",
        "wait-is-the-longer-of-rpm",
        "oversized-requests-clamped-to-a-minute",
    ],
)
def test_limiter_reserve(
    rpm: float,
    tpm: float,
    reservations: list[tuple[int, float, float]],
    expected: list[float | None],
) -> None:
    limiter = UpstreamLimiter.build(rpm, tpm)
    waits = [limiter.reserve(tokens, now, max_wait) for tokens, now, max_wait in reservations]
    assert waits == [w if w is None else pytest.approx(w) for w in expected]


def test_refused_reservation_takes_nothing() -> None:
    limiter = UpstreamLimiter.build(rpm=2, tpm=100)
    assert limiter.reserve(50, 0.0, max_wait=0.0) == 0.0
    assert limiter.retry_in(80, 0.0) == pytest.approx(18.0)
    for _ in range(10):
        assert limiter.reserve(80, 0.0, max_wait=1.0) is None
    assert limiter.retry_in(80, 0.0) == pytest.approx(18.0)
    assert limiter.reserve(50, 0.0, max_wait=0.0) == 0.0


@pytest.mark.parametrize(
    ("estimated", "actual", "next_tokens", "expected_wait"),
    [
        (50, 50, 50, 0.0),
        (80, 30, 70, 0.0),
        (80, 30, 71, 0.6),
        (30, 80, 20, 0.0),
        (30, 80, 21, 0.6),
        (30, 130, 1, 18.6),
        (500, 100, 1, 0.6),
        (500, 450, 1, 210.6),
    ],
    ids=[
        "exact-estimate",
        "overestimate-gives-back",
        "overestimate-gives-back-no-more",
        "underestimate-charges",
        "underestimate-charges-exactly",
        "underestimate-goes-negative",
        "oversized-estimate-gives-back-nothing-it-did-not-take",
        "oversized-estimate-charges-the-real-usage",
    ],
)
def test_limiter_correct(
    estimated: int, actual: int, next_tokens: int, expected_wait: float
) -> None:
    limiter = UpstreamLimiter.build(rpm=0, tpm=100)
    assert limiter.reserve(estimated, 0.0, max_wait=0.0) == 0.0
    limiter.correct(estimated, actual)
    assert limiter.retry_in(next_tokens, 0.0) == pytest.approx(expected_wait)


def test_correct_without_token_limit_is_a_no_op() -> None:
    limiter = UpstreamLimiter.build(rpm=1, tpm=0)
    assert limiter.reserve(10, 0.0, max_wait=0.0) == 0.0
    limiter.correct(10, 10**6)
    assert limiter.retry_in(10**6, 0.0) == pytest.approx(60.0)
