"""Shadow answers: during a shadow step, the canary answers some requests in the background.

::

    AnswerService.answer ──after the live answer is recorded──> ShadowRunner.submit(result)
        one non-blocking call: eligibility, X-No-Shadow, percent, breaker, rate limit,
        concurrency, maxShadowPerMinute (service.answering.shadow_policy)
                │
                ▼ asyncio task (at most SHADOW_CONCURRENCY at once)
        the canary version on the same input, through a copy of the pipeline without the
        response cache, with its own deadline (SHADOW_TIMEOUT_SECONDS), never returned
                │
                ▼ promptrollouts_shadow_*{mode="shadow"}: outcome, latency, tokens, cost,
                  similarity with the live answer (embedded model), same citations or not

The live response never waits for its shadow: :meth:`ShadowRunner.submit` decides and
creates a task, nothing else. A shadow answer is never returned, never cached (its
pipeline has no cache) and never stored under an idempotency key (it never reaches the
HTTP layer). Anything a shadow answer raises is counted (``result="error"``) and logged
without content. Shutdown cancels the running shadow answers (``result="cancelled"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from service.answering.judge_policy import TokenBucket
from service.answering.outcome import Outcome
from service.answering.pipeline import AnswerService
from service.answering.result import AnswerResult, cost_usd
from service.answering.shadow_policy import (
    Hurdles,
    assess_same_citations,
    build_similarity,
    decide_shadow,
    is_shadowable,
)
from service.catalog.registry import ServedVersion
from service.llm.chat import ChatModel
from service.llm.resilience.caller import ResilientChatModel
from service.retrieval.embeddings import Embedder
from service.telemetry.metrics import Metrics
from service.telemetry.shadow_metrics import ShadowResult

__all__ = ["NoCache", "ShadowRunner"]

_log = logging.getLogger(__name__)
_MODE = "shadow"
#: How long after its deadline a shadow answer is cancelled if it has not ended by itself.
_BACKSTOP_SECONDS = 0.5


class NoCache:
    """A response cache that keeps nothing: shadow answers are never cached, nor served
    from the live answers' cache."""

    def get(self, key: str) -> None:
        """Nothing is ever cached."""
        return None

    def put(self, key: str, response: object, ttl_seconds: float) -> None:
        """Keeps nothing."""


class ShadowRunner:
    """Runs the shadowed canary of a prompt in the background and measures its answers."""

    def __init__(
        self,
        answers: AnswerService,
        metrics: Metrics,
        *,
        embedder: Embedder | None = None,
        concurrency: int = 4,
        timeout_seconds: float = 10.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        breakers: Sequence[ChatModel] = (),
    ) -> None:
        # The same pipeline without cache, judge, request log or shadow of its own, and
        # with the shadow deadline as its ceiling.
        self._answers = replace(
            answers,
            cache=NoCache(),  # type: ignore[arg-type]  # the cache's get/put, keeping nothing
            judge=None,
            request_log=None,
            shadow=None,
            max_deadline_seconds=timeout_seconds,
        )
        self._metrics = metrics.shadow
        self._prices = answers.prices
        self._embedder = embedder
        self._concurrency = concurrency
        self._timeout = timeout_seconds
        self._rng = rng or random.Random()  # noqa: S311 - sampling, not cryptography
        self._clock = clock
        self._resilient = [
            m for m in (answers.chat, *breakers) if isinstance(m, ResilientChatModel)
        ]
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the answer path: decide and start, never wait ---------------------------------

    def submit(self, result: AnswerResult, allowed: bool = True) -> None:
        """Shadow `result`'s request if its prompt has a shadowed canary and every bound
        allows it; `allowed` is False for ``X-No-Shadow: true``. Never blocks or raises."""
        try:
            self._offer(result, allowed)
        except Exception as error:  # the live answer is sent whatever happens here
            _log.warning("shadow skipped a request: error=%s", type(error).__name__)

    def _offer(self, result: AnswerResult, allowed: bool) -> None:
        if result.served is None:
            return
        shadow = self._answers.catalog.registry.shadow_of(result.served.prompt)
        if shadow is None or not is_shadowable(result, shadow):
            return
        key = (shadow.prompt, shadow.version)
        model = shadow.resource.spec.model
        skip = decide_shadow(
            Hurdles(
                opted_out=not allowed,
                roll=self._rng.random(),
                percent=shadow.shadow_percent,
                breaker_open=self._breaker_open(model.name),
                rate_limited=self._rate_limited(model.name, model.max_tokens),
                busy=len(self._tasks) >= self._concurrency,
            )
        )
        if skip is None and not self._bucket(shadow).take(self._clock()):
            skip = ShadowResult.OVER_BUDGET
        if skip is not None:
            self._count(key, skip)
            return
        task = asyncio.create_task(self._shadow(result, shadow), name=f"shadow {shadow.prompt}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the lifespan --------------------------------------------------------------

    async def stop(self) -> None:
        """Cancel the running shadow answers and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> int:
        """Shadow answers in progress."""
        return len(self._tasks)

    # --- the background answer -------------------------------------------------------

    async def _shadow(self, live: AnswerResult, shadow: ServedVersion) -> None:
        key = (shadow.prompt, shadow.version)
        request = live.request.model_copy(update={"version": shadow.version})
        started = self._clock()
        try:
            try:
                async with asyncio.timeout(self._timeout + _BACKSTOP_SECONDS):
                    result = await self._answers.run(request, f"shadow-{secrets.token_hex(8)}")
            except TimeoutError:  # the backstop: measured as a live answer past its deadline
                self._record_timeout(key, self._clock() - started)
            else:
                self._record(key, result)
                async with asyncio.timeout(self._timeout):
                    await self._compare(key, live, result)
        except asyncio.CancelledError:
            self._count(key, ShadowResult.CANCELLED)
            raise
        except Exception as error:  # a shadow failure never escapes
            self._count(key, ShadowResult.ERROR)
            _log.warning(
                "shadow answer failed: prompt=%s version=%s error=%s",
                *key,
                type(error).__name__,
            )
            return
        self._count(key, ShadowResult.DONE)

    def _record(self, key: tuple[str, str], result: AnswerResult) -> None:
        """The shadow answer's outcome, latency, tokens and cost (mode="shadow")."""
        prompt, version = key
        self._metrics.requests.labels(prompt, version, result.outcome.value, _MODE).inc()
        self._metrics.request_duration.labels(prompt, version, _MODE).observe(
            result.elapsed_seconds
        )
        reply = result.reply
        if reply is None:
            return
        labels = (prompt, version, reply.model)
        self._metrics.tokens.labels(*labels, "input", _MODE).inc(reply.input_tokens)
        self._metrics.tokens.labels(*labels, "output", _MODE).inc(reply.output_tokens)
        cost = cost_usd(self._prices, reply.model, reply.input_tokens, reply.output_tokens)
        self._metrics.cost.labels(*labels, _MODE).inc(cost)

    def _record_timeout(self, key: tuple[str, str], seconds: float) -> None:
        prompt, version = key
        self._metrics.requests.labels(prompt, version, Outcome.UNAVAILABLE.value, _MODE).inc()
        self._metrics.request_duration.labels(prompt, version, _MODE).observe(seconds)

    async def _compare(
        self, key: tuple[str, str], live: AnswerResult, shadow: AnswerResult
    ) -> None:
        """Agreement with the live answer: same citations or not, and embedding similarity."""
        ours, theirs = live.response, shadow.response
        if ours is None or theirs is None:
            return
        same = assess_same_citations(
            [c.id for c in ours.citations], [c.id for c in theirs.citations]
        )
        self._metrics.citations.labels(*key, "true" if same else "false", _MODE).inc()
        if self._embedder is None or not ours.answer or not theirs.answer:
            return
        first, second = await self._embedder.embed([ours.answer, theirs.answer])
        similarity = build_similarity(first, second)
        if similarity is not None:
            self._metrics.similarity.labels(*key, _MODE).observe(similarity)

    # --- helpers -------------------------------------------------------------------

    def _breaker_open(self, model: str) -> bool:
        """Whether the answering chain's breaker for `model` is open (a peek, no probe)."""
        now = time.monotonic()
        return any(m.upstream_state(model).breaker.retry_in(now) > 0 for m in self._resilient)

    def _rate_limited(self, model: str, max_tokens: int) -> bool:
        """Whether `model`'s rate limit could not take one more call now without waiting."""
        now = time.monotonic()
        return any(
            m.upstream_state(model).limiter.retry_in(max_tokens, now) > 0 for m in self._resilient
        )

    def _bucket(self, shadow: ServedVersion) -> TokenBucket:
        key = (shadow.prompt, shadow.version)
        per_minute = shadow.resource.spec.rollout.max_shadow_per_minute
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket.full(per_minute, self._clock())
        elif bucket.per_minute != per_minute:
            bucket.resize(per_minute)
        return bucket

    def _count(self, key: tuple[str, str], result: ShadowResult) -> None:
        self._metrics.calls.labels(*key, result.value).inc()
