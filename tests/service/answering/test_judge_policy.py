"""The judge's budget (a token bucket per version) and sampling, as tables (pure)."""

from __future__ import annotations

import pytest

from service.answering.judge_policy import TokenBucket, decide_sampled


@pytest.mark.parametrize(
    ("roll", "rate", "sampled"),
    [
        (0.0, 0.1, True),
        (0.0999, 0.1, True),
        (0.1, 0.1, False),
        (0.99, 1.0, True),
        (0.5, 0.0001, False),
    ],
    ids=["lowest", "just-under", "at-rate", "always", "rare"],
)
def test_an_answer_is_sampled_below_the_rate(roll: float, rate: float, sampled: bool) -> None:
    assert decide_sampled(roll, rate) is sampled


def test_a_full_bucket_spends_per_minute_then_refuses() -> None:
    bucket = TokenBucket.full(10, now=0.0)
    taken = [bucket.take(0.0) for _ in range(25)]
    assert taken.count(True) == 10 and taken[:10] == [True] * 10


@pytest.mark.parametrize(
    ("seconds", "more"),
    [(0.0, 0), (5.9, 0), (6.0, 1), (30.0, 5), (60.0, 10), (600.0, 10)],
    ids=["none", "just-short", "one-token", "half-minute", "minute", "capped"],
)
def test_an_empty_bucket_refills_at_per_minute(seconds: float, more: int) -> None:
    bucket = TokenBucket.full(10, now=0.0)
    while bucket.take(0.0):
        pass
    assert sum(bucket.take(seconds) for _ in range(50)) == more


def test_a_given_back_token_is_spent_again_and_never_overfills() -> None:
    bucket = TokenBucket.full(2, now=0.0)
    bucket.give_back()
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    bucket.give_back()
    assert bucket.take(0.0) is True


def test_a_clock_going_backwards_refills_nothing() -> None:
    bucket = TokenBucket.full(60, now=100.0)
    while bucket.take(100.0):
        pass
    assert bucket.take(50.0) is False
    assert bucket.take(100.5) is False
    assert bucket.take(101.0) is True


def test_a_smaller_max_per_minute_cuts_the_tokens_in_hand() -> None:
    bucket = TokenBucket.full(100, now=0.0)
    bucket.resize(3)
    assert sum(bucket.take(0.0) for _ in range(10)) == 3
