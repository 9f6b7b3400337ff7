"""The resilient model: fallbacks, breaker, rate limits and retries around one upstream.

For each model in ``[model, *fallbacks]``, within one deadline, each model within its
slice of it (an equal share of what is left, so a hung model cannot starve the rest)::

    breaker open?            → skip to the next model (no upstream traffic)
    rate limit full?         → wait while the slice allows, else skip
    attempt (tenacity)       → retry 408/5xx/timeouts/resets with full-jitter backoff,
                               never sooner than Retry-After, never past the slice,
                               never beyond the retry budget; same Idempotency-Key each time
    429 (back-pressure)      → not a breaker failure and not charged to the retry budget:
                               wait (Retry-After, capped) and retry while the slice allows,
                               at most MODEL_MAX_THROTTLED_ATTEMPTS; a pause longer than the
                               request's whole deadline holds the breaker open until it ends
    client error (other 4xx) → UpstreamRejectedError at once: no retry, no fallback

When every model fails: UpstreamUnavailableError (503 + Retry-After), or
RateLimitedError (429 + Retry-After) when only our own limits stood in the way.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState

from prompting.tokens import estimate_tokens
from service.errors import UpstreamError, UpstreamRejectedError
from service.llm.chat import ChatModel, ChatRequest, ChatResponse
from service.llm.resilience.breaker import BreakerState
from service.llm.resilience.config import ResilienceConfig, ResilienceObserver, SilentObserver
from service.llm.resilience.first_try import call_with_retries
from service.llm.resilience.outcomes import (
    Tally,
    Tries,
    UpstreamState,
    build_failure,
    build_upstream_state,
    is_breaker_failure,
    is_rejection,
    is_retryable,
    is_throttle,
)
from service.llm.resilience.policy import (
    RETRY_AFTER_STATUSES,
    backoff_delay,
    cap_retry_after,
    decide_model_slice,
)
from service.llm.streams import ChatStream

__all__ = ["ResilienceConfig", "ResilientChatModel"]

_R = TypeVar("_R", ChatResponse, ChatStream)


def _asked_wait(error: BaseException | None) -> float | None:
    """The Retry-After of an error whose status honours it."""
    ok = isinstance(error, UpstreamError) and error.status in RETRY_AFTER_STATUSES
    return error.retry_after if ok and isinstance(error, UpstreamError) else None


class ResilientChatModel:
    """A ChatModel that survives a misbehaving upstream and never makes it worse."""

    def __init__(
        self,
        upstream: ChatModel,
        config: ResilienceConfig,
        *,
        observer: ResilienceObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._upstream = upstream
        self._config = config
        self._observer: ResilienceObserver = observer or SilentObserver()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._state: dict[str, UpstreamState] = {}

    def upstream_state(self, model: str) -> UpstreamState:
        """The breaker, limiter and budget of one model (created on first use)."""
        state = self._state.get(model)
        if state is None:
            state = self._state[model] = build_upstream_state(self._config, model)
        return state

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer with the first model that can, within the request's deadline."""
        response, index, tally = await self._first_able(request, self._upstream.complete)
        return replace(response, retries=tally.retries, fallback_used=index > 0)

    async def _first_able(
        self, request: ChatRequest, send: Callable[[ChatRequest], Awaitable[_R]]
    ) -> tuple[_R, int, Tally]:
        """`send` to the models in turn (`complete`, or `open_stream` in
        :mod:`service.llm.resilience.streaming`): the first reply, its model's index, the tally."""
        patience = min(request.timeout_seconds, self._config.max_deadline)
        deadline = self._clock() + patience
        if request.deadline is not None:
            deadline = min(deadline, request.deadline.at)
        tally = Tally()
        estimated = request.max_tokens + sum(estimate_tokens(m.content) for m in request.messages)
        chain = (request.model, *request.fallbacks)
        for index, model in enumerate(chain):
            now = self._clock()
            if deadline - now < self._config.min_attempt:
                tally.upstream_failed = True  # out of time: unavailable, not our rate limit
                tally.reasons.append(f"{model}: deadline reached")
                break
            state = self.upstream_state(model)
            if not self._admit(model, state, tally):
                continue
            share = decide_model_slice(deadline - now, len(chain) - index, self._config.min_attempt)
            until = now + share
            if not await self._reserve(model, state, estimated, until, tally):
                continue
            try:
                response = await self._attempts(model, state, request, until, patience, tally, send)
            except UpstreamError as error:
                tally.upstream_failed = True
                tally.reasons.append(str(error))
                if error.retry_after is not None:
                    tally.hints.append(error.retry_after)
                continue
            if isinstance(response, ChatResponse):
                state.limiter.correct(estimated, response.input_tokens + response.output_tokens)
            return response, index, tally
        raise build_failure(tally, self._config.default_retry_after)

    def _admit(self, model: str, state: UpstreamState, tally: Tally | None) -> bool:
        before = state.breaker.state
        allowed = state.breaker.allow(self._clock())
        self._report_breaker(model, state, before)
        if not allowed and tally is not None:
            tally.upstream_failed = True
            tally.reasons.append(f"{model}: circuit open")
            tally.hints.append(state.breaker.retry_in(self._clock()))
        return allowed

    async def _reserve(
        self, model: str, state: UpstreamState, estimated: int, deadline: float, tally: Tally
    ) -> bool:
        now = self._clock()
        wait = state.limiter.reserve(estimated, now, deadline - now - self._config.min_attempt)
        if wait is None:
            state.breaker.record_neutral()
            self._observer.rate_limit(model, 0.0, rejected=True)
            tally.reasons.append(f"{model}: rate limit full")
            tally.hints.append(state.limiter.retry_in(estimated, now))
            return False
        if wait > 0:
            self._observer.rate_limit(model, wait, rejected=False)
            try:
                await self._sleep(wait)
            except asyncio.CancelledError:
                state.breaker.record_neutral()  # give back a half-open probe slot
                raise
        return True

    async def _attempts(
        self,
        model: str,
        state: UpstreamState,
        request: ChatRequest,
        deadline: float,
        patience: float,
        tally: Tally,
        send: Callable[[ChatRequest], Awaitable[_R]],
    ) -> _R:
        """Attempts at one model until `deadline` (its slice's end), retried by tenacity's
        loop once the first fails (`first_try`); reraises the last UpstreamError.
        `patience`: the request's whole deadline."""
        state.budget.deposit(self._clock())
        tries = Tries()

        attempt = partial(self._attempt, model, state, request, deadline, patience, tries, send)
        return await call_with_retries(
            lambda: attempt(first=True),
            lambda: attempt(first=False),
            lambda: AsyncRetrying(
                retry=lambda rs: self._should_retry(rs, state),
                wait=self._wait,
                stop=lambda rs: self._should_stop(rs, deadline, state, tries),
                sleep=self._sleep,
                before_sleep=lambda rs: self._before_sleep(rs, model, tally),
                reraise=True,
            ),
        )

    async def _attempt(
        self,
        model: str,
        state: UpstreamState,
        request: ChatRequest,
        deadline: float,
        patience: float,
        tries: Tries,
        send: Callable[[ChatRequest], Awaitable[_R]],
        *,
        first: bool,
    ) -> _R:
        if not first and not self._admit(model, state, None):
            raise UpstreamError(f"model {model}: circuit opened", kind="circuit_open")
        timeout = min(self._config.attempt_timeout, deadline - self._clock())
        before = state.breaker.state
        try:
            response = await send(
                replace(request, model=model, fallbacks=(), timeout_seconds=timeout, deadline=None)
            )
        except UpstreamError as error:
            self._settle_failure(model, state, error, patience, tries, before)
            if is_rejection(error):
                raise UpstreamRejectedError(str(error)) from error
            raise
        except asyncio.CancelledError:
            state.breaker.record_neutral()
            raise
        state.breaker.record_success(self._clock())
        self._report_breaker(model, state, before)
        self._observer.attempt(model, "ok")
        return response

    def _settle_failure(
        self,
        model: str,
        state: UpstreamState,
        error: UpstreamError,
        patience: float,
        tries: Tries,
        before: BreakerState,
    ) -> None:
        """Count a failed attempt: breaker, pause, metrics and the per-kind tries."""
        now = self._clock()
        error.retry_after = cap_retry_after(error.retry_after, self._config.retry_after_max)
        if is_breaker_failure(error):
            state.breaker.record_failure(now)
            tries.failures += 1
        else:
            state.breaker.record_neutral()
        if is_throttle(error):
            tries.throttled += 1
            self._observer.throttled(model, error.retry_after)
        asked = _asked_wait(error)
        if asked is not None and asked > patience:
            # No request of this kind could wait that long: stop calling until it ends.
            state.breaker.hold(now, asked)
        self._report_breaker(model, state, before)
        self._observer.attempt(model, str(error.status) if error.status else error.kind)

    def _should_retry(self, retry_state: RetryCallState, state: UpstreamState) -> bool:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return (
            isinstance(error, UpstreamError)
            and is_retryable(error)
            and state.breaker.state is not BreakerState.OPEN
        )

    def _wait(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        config, roll = self._config, self._rng.random()
        backoff = backoff_delay(
            retry_state.attempt_number, config.backoff_base, config.backoff_cap, roll
        )
        return max(backoff, _asked_wait(error) or 0.0)

    def _should_stop(
        self, retry_state: RetryCallState, deadline: float, state: UpstreamState, tries: Tries
    ) -> bool:
        # tenacity asks `stop` after `retry` and right before sleeping: the budget is the
        # last gate, so a retry stopped by attempts or deadline costs no budget.
        throttled = is_throttle(retry_state.outcome.exception() if retry_state.outcome else None)
        if throttled and tries.throttled >= self._config.max_throttled_attempts:
            return True
        if not throttled and tries.failures >= self._config.max_attempts:
            return True
        remaining = deadline - self._clock()
        if retry_state.upcoming_sleep + self._config.min_attempt > remaining:
            return True
        # Back-pressure is paced by the upstream's own Retry-After, not by the budget,
        # which bounds retries against failing upstreams.
        return not throttled and not state.budget.try_withdraw(self._clock())

    def _before_sleep(self, retry_state: RetryCallState, model: str, tally: Tally) -> None:
        tally.retries += 1
        self._observer.retry(model, retry_state.upcoming_sleep)

    def _report_breaker(self, model: str, state: UpstreamState, before: BreakerState) -> None:
        if state.breaker.state is not before:
            self._observer.breaker(model, state.breaker.state)
