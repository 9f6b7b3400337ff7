"""The retry budget: deposit/withdraw arithmetic, reserve refill, and the bound on retries."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from service.llm.resilience.budget import RetryBudget


def fresh(ratio: float = 0.2, min_per_second: float = 1.0, reserve: float = 10.0) -> RetryBudget:
    """A budget as the caller builds it: starting with a full reserve."""
    return RetryBudget(ratio=ratio, min_per_second=min_per_second, reserve=reserve, balance=reserve)


@dataclass(frozen=True)
class Op:
    """`deposit` or `withdraw` at time `at`; a withdraw expects `granted`."""

    kind: str
    at: float
    granted: bool | None = None


def deposit(at: float) -> Op:
    return Op("deposit", at)


def withdraw(at: float, granted: bool) -> Op:
    return Op("withdraw", at, granted)


def drain(at: float, count: int) -> list[Op]:
    return [withdraw(at, True)] * count


@pytest.mark.parametrize(
    ("reserve", "ops", "balance"),
    [
        (10.0, [], 10.0),
        (10.0, drain(0, 10), 0.0),
        (10.0, [*drain(0, 10), withdraw(0, False)], 0.0),
        (10.0, [*drain(0, 10), *[deposit(0)] * 4, withdraw(0, False)], 0.8),
        (10.0, [*drain(0, 10), *[deposit(0)] * 5, withdraw(0, True)], 0.0),
        (10.0, [*drain(0, 10), withdraw(0.5, False)], 0.5),
        (10.0, [*drain(0, 10), withdraw(1.0, True)], 0.0),
        (10.0, [*drain(0, 10), withdraw(1.0, True), withdraw(1.5, False)], 0.5),
        (10.0, [*drain(0, 10), withdraw(4.0, True), withdraw(4.0, True)], 2.0),
        (10.0, [*drain(0, 10), withdraw(1000.0, True)], 9.0),
        (10.0, [deposit(t) for t in range(20)], 10.0),
        (10.0, [*[deposit(0)] * 20, *drain(0, 10), withdraw(0, False)], 0.0),
        (10.0, [*drain(0, 10), withdraw(3.0, True), withdraw(2.0, True)], 1.0),
        (0.0, [withdraw(0, False), *[deposit(t) for t in range(5)], withdraw(9, True)], 0.0),
    ],
    ids=[
        "starts-with-the-reserve",
        "reserve-spent",
        "empty-refuses",
        "four-deposits-are-not-a-retry",
        "five-deposits-are-one-retry",
        "refill-half-a-retry",
        "refill-one-retry-a-second",
        "refill-continues",
        "refill-several",
        "refill-stops-at-the-reserve",
        "deposits-stop-at-the-reserve",
        "deposits-bank-no-extra-retries",
        "clock-going-back-refills-nothing",
        "no-reserve-ratio-still-works",
    ],
)
def test_budget_arithmetic(reserve: float, ops: list[Op], balance: float) -> None:
    budget = fresh(reserve=reserve)
    for index, op in enumerate(ops):
        if op.kind == "deposit":
            budget.deposit(op.at)
        else:
            assert budget.try_withdraw(op.at) is op.granted, f"op {index}: {op}"
    assert budget.balance == pytest.approx(balance)


def simulate_outage(
    budget: RetryBudget, requests: int, retries_wanted: int, spacing: float, start: float = 0.0
) -> tuple[int, float]:
    """Requests against an always-failing upstream: (retries granted, seconds elapsed)."""
    granted = 0
    now = start
    for index in range(requests):
        now = start + index * spacing
        budget.deposit(now)
        for _ in range(retries_wanted):
            if not budget.try_withdraw(now):
                break
            granted += 1
    return granted, now - start


@pytest.mark.parametrize(
    ("requests", "retries_wanted", "spacing"),
    [
        (50, 2, 0.0),
        (50, 2, 0.01),
        (1000, 2, 0.01),
        (1000, 5, 0.001),
        (200, 1, 0.5),
        (10, 10, 0.0),
    ],
    ids=[
        "burst",
        "50-at-100rps",
        "1000-at-100rps",
        "1000-at-1000rps",
        "slow-trickle",
        "few-greedy",
    ],
)
@pytest.mark.parametrize(
    ("ratio", "reserve", "min_per_second"),
    [(0.2, 10.0, 1.0), (0.1, 0.0, 0.0), (1.0, 3.0, 5.0)],
    ids=["defaults", "ratio-only", "generous"],
)
def test_retries_stay_within_the_budget(
    requests: int,
    retries_wanted: int,
    spacing: float,
    ratio: float,
    reserve: float,
    min_per_second: float,
) -> None:
    budget = fresh(ratio=ratio, min_per_second=min_per_second, reserve=reserve)
    granted, elapsed = simulate_outage(budget, requests, retries_wanted, spacing)
    bound = requests * ratio + reserve + elapsed * min_per_second
    assert granted <= bound
    assert granted <= requests * retries_wanted


def test_a_burst_gets_the_whole_reserve_and_its_share() -> None:
    granted, _ = simulate_outage(fresh(), requests=50, retries_wanted=2, spacing=0.0)
    # 10 from the reserve, then 50 x 0.2 = 10 from deposits (minus rounding at the edge).
    assert 19 <= granted <= 20


def test_healthy_history_does_not_bank_retries_for_an_outage() -> None:
    budget = fresh()
    for index in range(10_000):  # 1000 s of healthy traffic at 10 requests a second
        budget.deposit(index * 0.1)
    start = 1000.0
    granted, elapsed = simulate_outage(
        budget, requests=100, retries_wanted=2, spacing=0.01, start=start
    )
    assert granted <= 100 * 0.2 + 10.0 + elapsed * 1.0
