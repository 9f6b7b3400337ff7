"""One stage of an answer (retrieval, the model call, a repair) under the request's deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from service.errors import DeadlineExceededError
from service.llm.resilience.deadline import Deadline

__all__ = ["within"]

_T = TypeVar("_T")


async def within(deadline: Deadline, grace: float, stage: str, work: Awaitable[_T]) -> _T:
    """Await `work`, cancelled `grace` seconds after `deadline`; never started once it passed."""
    remaining = deadline.remaining()
    if remaining <= 0:
        if asyncio.iscoroutine(work):
            work.close()  # never started: no "coroutine was never awaited" warning
        raise DeadlineExceededError(f"deadline reached before {stage}")
    try:
        async with asyncio.timeout(remaining + grace) as scope:
            return await work
    except TimeoutError as error:
        if scope.expired():
            raise DeadlineExceededError(f"deadline reached during {stage}") from error
        raise
