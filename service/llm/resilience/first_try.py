"""One attempt before tenacity's loop: the loop is entered only when the first one fails.

Building and stepping an ``AsyncRetrying`` costs more per call than the rest of the
resilience layer around an upstream call that succeeds at once, which is most of them.
:func:`call_with_retries` runs the first attempt directly; if it raises, tenacity's loop
starts with that failure as its first attempt's outcome (re-raised, not re-sent), so
every decision that follows (retry or not, wait, stop, before_sleep) sees exactly what it
saw when tenacity ran the first attempt itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying

__all__ = ["call_with_retries"]

_R = TypeVar("_R")


async def call_with_retries(
    first: Callable[[], Awaitable[_R]],
    again: Callable[[], Awaitable[_R]],
    build_retrying: Callable[[], AsyncRetrying],
) -> _R:
    """`first()`; if it raises an Exception, tenacity's loop from `build_retrying()` with
    that failure as attempt 1, and `again()` for each later attempt. A BaseException (a
    cancellation) propagates, as the loop would re-raise it when it retries Exceptions only."""
    try:
        return await first()
    except Exception as error:  # every failure goes to tenacity's loop, as before
        first_failure: Exception | None = error

    async def replay_then_attempt() -> _R:
        nonlocal first_failure
        if first_failure is not None:
            failure, first_failure = first_failure, None
            raise failure
        return await again()

    retrying: Callable[[Callable[[], Awaitable[_R]]], Awaitable[_R]] = build_retrying()
    return await retrying(replay_then_attempt)
