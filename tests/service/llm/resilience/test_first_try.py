"""call_with_retries: the first attempt outside tenacity's loop, and the same retries after.

Each case runs one script of outcomes twice, through tenacity alone (the old way) and
through call_with_retries, and compares what the upstream saw and what the loop decided.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from service.llm.resilience.first_try import call_with_retries

pytestmark = pytest.mark.asyncio


class RetryableError(Exception):
    """A failure the loop retries."""


class FatalError(Exception):
    """A failure the loop does not retry."""


class Script:
    """An upstream that plays `outcomes` in turn; records the calls and the loop's sleeps."""

    def __init__(self, outcomes: list[str | BaseException]) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[str] = []
        self.sleeps: list[float] = []
        self.before_sleep: list[int] = []
        self.built = 0

    async def call(self, label: str) -> str:
        self.calls.append(label)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def retrying(self) -> AsyncRetrying:
        self.built += 1

        def note(state: RetryCallState) -> None:
            self.before_sleep.append(state.attempt_number)

        return AsyncRetrying(
            retry=retry_if_exception_type(RetryableError),
            wait=lambda state: 0.1 * state.attempt_number,
            stop=stop_after_attempt(3),
            sleep=self.sleep,
            before_sleep=note,
            reraise=True,
        )


async def _both(outcomes: Callable[[], list[str | BaseException]]) -> tuple[Script, Script]:
    """The script run by tenacity alone, and by call_with_retries; errors are kept."""
    old, new = Script(outcomes()), Script(outcomes())

    async def through_the_loop() -> str:
        async def any_attempt() -> str:
            return await old.call("any")

        result: str = await old.retrying()(any_attempt)
        return result

    async def first_then_the_loop() -> str:
        return await call_with_retries(
            lambda: new.call("first"), lambda: new.call("again"), new.retrying
        )

    results: list[object] = []
    for run in (through_the_loop, first_then_the_loop):
        try:
            results.append(await run())
        except Exception as error:  # compared below
            results.append(type(error))
    assert results[0] == results[1]
    return old, new


async def test_a_first_success_never_builds_the_loop() -> None:
    old, new = await _both(lambda: ["ok"])
    assert new.calls == ["first"]
    assert new.built == 0
    assert old.built == 1


async def test_retries_after_a_first_failure_are_the_loops_own() -> None:
    old, new = await _both(lambda: [RetryableError(), RetryableError(), "ok"])
    assert new.calls == ["first", "again", "again"]  # nothing sent twice for the replay
    assert len(old.calls) == len(new.calls) == 3
    assert new.sleeps == old.sleeps == [0.1, 0.2]
    assert new.before_sleep == old.before_sleep == [1, 2]


async def test_the_loop_stops_where_it_stopped_before() -> None:
    old, new = await _both(lambda: [RetryableError(), RetryableError(), RetryableError(), "never"])
    assert len(old.calls) == len(new.calls) == 3
    assert new.sleeps == old.sleeps


async def test_a_failure_not_retried_is_raised_as_it_was() -> None:
    fatal = FatalError("no")
    script = Script([fatal])
    with pytest.raises(FatalError) as raised:
        await call_with_retries(
            lambda: script.call("first"), lambda: script.call("again"), script.retrying
        )
    assert raised.value is fatal
    assert script.calls == ["first"]


async def test_a_cancellation_propagates_without_the_loop() -> None:
    script = Script([asyncio.CancelledError()])
    with pytest.raises(asyncio.CancelledError):
        await call_with_retries(
            lambda: script.call("first"), lambda: script.call("again"), script.retrying
        )
    assert script.built == 0
