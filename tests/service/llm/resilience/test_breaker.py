"""The circuit breaker's state machine, driven by sequences of events at explicit times."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from service.llm.resilience.breaker import BreakerConfig, BreakerState, CircuitBreaker

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

#: Small numbers so sequences stay short: 3 in a row, or ≥ 50 % of ≥ 4 calls in 10 s.
CONFIG = BreakerConfig(
    consecutive_failures=3,
    failure_rate=0.5,
    window_seconds=10.0,
    min_calls=4,
    cool_down_seconds=5.0,
    half_open_probes=2,
)


@dataclass(frozen=True)
class Step:
    """One event at time `at`: "ok", "fail", "neutral", or "allow" (expecting `allowed`)."""

    at: float
    event: str
    allowed: bool | None = None


def ok(at: float) -> Step:
    return Step(at, "ok")


def fail(at: float) -> Step:
    return Step(at, "fail")


def neutral(at: float) -> Step:
    return Step(at, "neutral")


def allow(at: float, allowed: bool) -> Step:
    return Step(at, "allow", allowed)


def run(steps: list[Step], config: BreakerConfig = CONFIG) -> CircuitBreaker:
    """Play `steps` on a fresh breaker, checking every `allow` answer on the way."""
    breaker = CircuitBreaker(config)
    for index, step in enumerate(steps):
        if step.event == "ok":
            breaker.record_success(step.at)
        elif step.event == "fail":
            breaker.record_failure(step.at)
        elif step.event == "neutral":
            breaker.record_neutral()
        else:
            assert breaker.allow(step.at) is step.allowed, f"step {index}: {step}"
    return breaker


#: Enough successes that a few failures stay well under the failure rate.
HEALTHY = [ok(0)] * 6

#: Opens the breaker at t=1 by three consecutive failures.
TRIP = [allow(0, True), fail(0), allow(0.5, True), fail(0.5), allow(1, True), fail(1)]


@pytest.mark.parametrize(
    ("steps", "state"),
    [
        ([], CLOSED),
        ([fail(0), fail(1)], CLOSED),
        ([fail(0), fail(1), fail(2)], OPEN),
        ([*HEALTHY, fail(1), fail(2), ok(3), fail(4), fail(5)], CLOSED),
        ([*HEALTHY, fail(1), fail(2), ok(3), fail(4), fail(5), fail(6)], OPEN),
        ([fail(0), fail(1), neutral(2), fail(3)], OPEN),
        ([ok(0), fail(1), ok(2), fail(3)], OPEN),
        ([ok(0), fail(1), ok(2)], CLOSED),
        ([ok(0), ok(1), fail(2), ok(3), fail(4)], CLOSED),
        ([ok(0), ok(1), ok(2), fail(3), ok(4), fail(5)], CLOSED),
        ([ok(0), ok(1), fail(2), ok(3), fail(4), fail(5)], OPEN),
        ([fail(0), fail(1), ok(2), ok(3), fail(20), fail(21)], CLOSED),
        ([fail(0), ok(0.5), ok(1), fail(10)], OPEN),
        ([fail(0), ok(0.5), ok(1), fail(10.1)], CLOSED),
    ],
    ids=[
        "fresh",
        "two-in-a-row-stay-closed",
        "three-in-a-row-open",
        "success-resets-consecutive",
        "three-in-a-row-after-reset",
        "neutral-does-not-reset",
        "rate-half-of-four-opens",
        "rate-below-min-calls-stays-closed",
        "rate-two-of-five-stays-closed",
        "rate-two-of-six-stays-closed",
        "rate-three-of-six-opens",
        "old-failure-left-the-window",
        "window-edge-is-inclusive",
        "window-edge-just-past",
    ],
)
def test_closed_breaker_opens_on_streak_or_rate(steps: list[Step], state: BreakerState) -> None:
    assert run(steps).state is state


def test_rate_opens_only_from_min_calls_on() -> None:
    breaker = CircuitBreaker(CONFIG)
    breaker.record_failure(0)
    breaker.record_success(1)
    breaker.record_failure(2)
    assert breaker.state is CLOSED, "2 of 3 failed, but fewer than min_calls=4"
    breaker.record_success(3)
    assert breaker.state is CLOSED, "2 of 4 is exactly the rate, but the success cannot open"
    breaker.record_failure(4)
    assert breaker.state is OPEN, "3 of 5 ≥ 50 % with ≥ 4 calls"


@pytest.mark.parametrize(
    ("steps", "state"),
    [
        ([*TRIP, allow(1, False)], OPEN),
        ([*TRIP, allow(5.9, False)], OPEN),
        ([*TRIP, allow(6, True)], HALF_OPEN),
        ([*TRIP, allow(6, True), allow(6, True), allow(6.1, False)], HALF_OPEN),
        ([*TRIP, allow(6, True), ok(6.5), allow(6.6, True), allow(6.7, False)], HALF_OPEN),
        ([*TRIP, allow(6, True), allow(6, True), ok(7), ok(7.5)], CLOSED),
        ([*TRIP, allow(6, True), ok(7), allow(7, True), ok(7.5)], CLOSED),
        ([*TRIP, allow(6, True), allow(6, True), ok(7), fail(7.5)], OPEN),
        ([*TRIP, allow(6, True), fail(6.5), allow(11.4, False)], OPEN),
        ([*TRIP, allow(6, True), fail(6.5), allow(11.5, True)], HALF_OPEN),
        ([*TRIP, allow(6, True), allow(6, True), neutral(6.2), allow(6.3, True)], HALF_OPEN),
        ([*TRIP, allow(6, True), neutral(6.2), ok(6.3)], HALF_OPEN),
        (
            [*TRIP, allow(6, True), ok(6.1), allow(6.2, True), neutral(7), allow(7, True), ok(7)],
            CLOSED,
        ),
        ([*TRIP, allow(6, True), allow(6, True), ok(7), ok(7), allow(7, True), fail(8)], CLOSED),
        ([*TRIP, fail(2), allow(5.9, False), allow(6, True)], HALF_OPEN),
    ],
    ids=[
        "open-rejects",
        "open-rejects-until-cool-down",
        "cool-down-lets-a-probe",
        "at-most-two-probes-in-flight",
        "a-succeeded-probe-still-holds-its-slot",
        "two-probe-successes-close",
        "probes-one-after-another-close",
        "probe-failure-reopens",
        "reopen-restarts-cool-down",
        "reopened-cool-down-elapses",
        "neutral-frees-a-probe-slot",
        "neutral-probe-is-not-a-success",
        "neutral-then-success-closes",
        "closed-again-forgets-old-failures",
        "failure-while-open-does-not-extend",
    ],
)
def test_open_and_half_open(steps: list[Step], state: BreakerState) -> None:
    assert run(steps).state is state


@pytest.mark.parametrize(
    ("steps", "now", "expected"),
    [
        ([], 0.0, 0.0),
        (TRIP, 1.0, 5.0),
        (TRIP, 3.5, 2.5),
        (TRIP, 6.0, 0.0),
        (TRIP, 60.0, 0.0),
        ([*TRIP, allow(6, True)], 6.5, 0.0),
        ([*TRIP, allow(6, True), fail(7)], 8.0, 4.0),
    ],
    ids=[
        "closed",
        "just-opened",
        "half-way",
        "cool-down-over",
        "long-over",
        "half-open",
        "reopened",
    ],
)
def test_retry_in(steps: list[Step], now: float, expected: float) -> None:
    assert run(steps).retry_in(now) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("steps", "transitions"),
    [
        ([], 0),
        ([fail(0), fail(1)], 0),
        (TRIP, 1),
        ([*TRIP, fail(2)], 1),
        ([*TRIP, allow(6, True)], 2),
        ([*TRIP, allow(6, True), allow(6, True), ok(7), ok(7)], 3),
        ([*TRIP, allow(6, True), fail(7)], 3),
        ([*TRIP, allow(6, True), fail(7), allow(12, True), ok(12), allow(12, True), ok(13)], 5),
    ],
    ids=[
        "fresh",
        "no-change",
        "opened",
        "failure-while-open-is-no-change",
        "half-opened",
        "closed-again",
        "reopened",
        "reopened-then-closed",
    ],
)
def test_transitions_count_state_changes(steps: list[Step], transitions: int) -> None:
    assert run(steps).transitions == transitions


def test_probe_slots_with_three_probes() -> None:
    config = BreakerConfig(consecutive_failures=1, cool_down_seconds=1.0, half_open_probes=3)
    breaker = run([allow(0, True), fail(0)], config)
    assert [breaker.allow(1.0) for _ in range(4)] == [True, True, True, False]
    breaker.record_success(1.1)
    breaker.record_success(1.2)
    assert breaker.state is HALF_OPEN
    breaker.record_success(1.3)
    assert breaker.state is CLOSED
    assert breaker.allow(1.4) is True
