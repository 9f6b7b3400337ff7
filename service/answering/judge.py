"""The sampled online judge: a model scores a fraction of live answers in the background.

::

    AnswerService.answer ──record──> submit(result, span)     one non-blocking call:
                                     │                        sample, breaker, budget, queue
                                     ▼
                              asyncio.Queue (JUDGE_QUEUE_SIZE)
                                     │
                     JUDGE_CONCURRENCY workers (started and stopped by the lifespan)
                                     │
                     judge model, through its own resilience layer (one attempt,
                     JUDGE_TIMEOUT_SECONDS) ──> promptrollouts_judge_score{prompt,version}

The answer never waits for its judge: :meth:`OnlineJudge.submit` only decides and
enqueues, and the call runs in a worker task after the answer went back. Every decision
is counted in ``promptrollouts_judge_calls_total{prompt,version,result}``
(:class:`service.answering.judge_policy.JudgeResult`). A judge call gets a span of its own
trace (``judge {prompt}``, linked to the answer's span) without any content; logs name
the prompt, version, model and the kind of failure, never the texts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanContext, SpanKind

from api.v1alpha1 import Judge
from prompting.judging import assess_judge_reply, build_judge_messages
from service.answering.judge_policy import JudgeResult, TokenBucket, decide_sampled, is_judgeable
from service.answering.result import AnswerResult
from service.llm.chat import ChatModel, ChatRequest
from service.llm.resilience.caller import ResilientChatModel
from service.llm.resilience.deadline import Deadline
from service.telemetry.metrics import Metrics
from service.telemetry.spans import Tracing

__all__ = ["JudgeWork", "OnlineJudge"]

_log = logging.getLogger(__name__)
#: How long after its deadline a judge call is cancelled if it has not ended by itself.
_BACKSTOP_SECONDS = 0.5
#: Tokens the judge may answer with (a score and one sentence).
_JUDGE_MAX_TOKENS = 200


@dataclass(frozen=True)
class JudgeWork:
    """One sampled answer waiting for its judge (texts kept in memory only)."""

    prompt: str
    version: str
    judge: Judge
    question: str
    answer: str
    passages: tuple[str, ...]
    #: The answer's span, linked from the judge's span (None when not traced).
    link: SpanContext | None


class OnlineJudge:
    """Samples live answers, queues them, and scores them with each version's judge."""

    def __init__(
        self,
        chat: ChatModel,
        metrics: Metrics,
        *,
        tracing: Tracing | None = None,
        queue_size: int = 100,
        concurrency: int = 2,
        timeout_seconds: float = 10.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        breakers: Sequence[ChatModel] = (),
    ) -> None:
        self._chat = chat
        self._metrics = metrics
        self._tracing = tracing or Tracing()
        self._queue: asyncio.Queue[JudgeWork] = asyncio.Queue(maxsize=queue_size)
        self._concurrency = concurrency
        self._timeout = timeout_seconds
        self._rng = rng or random.Random()  # noqa: S311 - sampling, not cryptography
        self._clock = clock
        #: Resilient models whose breaker for the judge model is honoured too (the
        #: answering chain's: when answers cannot reach the model, neither does its judge).
        self._breakers = [m for m in (chat, *breakers) if isinstance(m, ResilientChatModel)]
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._workers: list[asyncio.Task[None]] = []
        #: The kind of the last failure of each version's judge, while it keeps failing.
        self._failing: dict[tuple[str, str], str] = {}

    # --- the answer path: decide and enqueue, never wait ------------------------------

    def submit(self, result: AnswerResult, span: Span) -> None:
        """Queue `result` for its version's judge if it is sampled and affordable; counts
        the decision. Never blocks, never raises for the answer's sake."""
        try:
            self._offer(result, span)
        except Exception as error:  # the answer is sent whatever happens here
            _log.warning("judge skipped an answer: error=%s", type(error).__name__)

    def _offer(self, result: AnswerResult, span: Span) -> None:
        if not is_judgeable(result) or result.response is None or result.served is None:
            return
        served = result.served
        judge = served.resource.spec.rollout.analysis.judge
        assert judge is not None  # is_judgeable
        key = (served.prompt, served.version)
        if not decide_sampled(self._rng.random(), judge.sample_rate):
            self._count(key, JudgeResult.SAMPLED_OUT)
            return
        if self._breaker_open(judge.model):
            self._count(key, JudgeResult.BREAKER_OPEN)
            return
        bucket = self._bucket(key, judge.max_per_minute)
        if not bucket.take(self._clock()):
            self._count(key, JudgeResult.OVER_BUDGET)
            return
        context = span.get_span_context()
        work = JudgeWork(
            prompt=served.prompt,
            version=served.version,
            judge=judge,
            question=result.request.question,
            answer=result.response.answer,
            passages=tuple(p.text for p in result.passages),
            link=context if context.is_valid else None,
        )
        try:
            self._queue.put_nowait(work)
        except asyncio.QueueFull:
            bucket.give_back()
            self._count(key, JudgeResult.DROPPED)

    # --- the lifespan --------------------------------------------------------------

    def start(self) -> None:
        """Start the workers (in the running event loop)."""
        for index in range(self._concurrency):
            self._workers.append(asyncio.create_task(self._work(), name=f"judge worker {index}"))

    async def stop(self) -> None:
        """Cancel the workers and their calls; queued work is discarded (not counted)."""
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        while not self._queue.empty():
            self._queue.get_nowait()

    @property
    def pending(self) -> int:
        """Sampled answers waiting for a worker."""
        return self._queue.qsize()

    # --- the workers ---------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            work = await self._queue.get()
            try:
                await self._judge(work)
            finally:
                self._queue.task_done()

    async def _judge(self, work: JudgeWork) -> None:
        key = (work.prompt, work.version)
        if self._breaker_open(work.judge.model):
            self._count(key, JudgeResult.BREAKER_OPEN)
            return
        with self._span(work) as span:
            try:
                score = await self._call(work)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a judge failure never escapes
                kind = type(error).__name__
                self._count(key, JudgeResult.ERROR)
                _record(span, JudgeResult.ERROR, error_type=kind)
                # A warning when a version's judge starts failing (or fails differently);
                # repeats of the same failure are debug lines (the counter has them all).
                level = logging.DEBUG if self._failing.get(key) == kind else logging.WARNING
                self._failing[key] = kind
                _log.log(
                    level,
                    "judge call failed: prompt=%s version=%s model=%s error=%s",
                    work.prompt,
                    work.version,
                    work.judge.model,
                    kind,
                )
                return
            if self._failing.pop(key, None) is not None:
                _log.info("judge calls succeed again: prompt=%s version=%s", *key)
            self._metrics.judge_score.labels(*key).observe(score)
            self._count(key, JudgeResult.SCORED)
            _record(span, JudgeResult.SCORED, score=score)

    async def _call(self, work: JudgeWork) -> float:
        """The judge's score for `work`; raises on any failure (JudgeReplyError included)."""
        request = ChatRequest(
            model=work.judge.model,
            messages=build_judge_messages(
                work.judge.rubric, work.question, work.answer, work.passages
            ),
            temperature=0.0,
            max_tokens=_JUDGE_MAX_TOKENS,
            timeout_seconds=self._timeout,
            question=work.judge.rubric,
            deadline=Deadline.after(self._timeout),
        )
        async with asyncio.timeout(self._timeout + _BACKSTOP_SECONDS):
            reply = await self._chat.complete(request)
        return assess_judge_reply(reply.text)

    # --- helpers -------------------------------------------------------------------

    def _breaker_open(self, model: str) -> bool:
        """Whether a breaker for `model` is open and not yet due for a probe (a peek: it
        takes no half-open probe slot)."""
        now = time.monotonic()
        return any(m.upstream_state(model).breaker.retry_in(now) > 0 for m in self._breakers)

    def _bucket(self, key: tuple[str, str], per_minute: int) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket.full(per_minute, self._clock())
        elif bucket.per_minute != per_minute:
            bucket.resize(per_minute)
        return bucket

    def _count(self, key: tuple[str, str], result: JudgeResult) -> None:
        self._metrics.judge_calls.labels(*key, result.value).inc()

    @contextmanager
    def _span(self, work: JudgeWork) -> Iterator[Span]:
        """``judge {prompt}`` in a trace of its own, linked to the answer (no content)."""
        if not self._tracing.enabled:
            yield INVALID_SPAN
            return
        with self._tracing.tracer.start_as_current_span(
            f"judge {work.prompt}",
            context=Context(),
            kind=SpanKind.INTERNAL,
            links=[Link(work.link)] if work.link is not None else None,
            attributes={
                "gen_ai.operation.name": "judge",
                "gen_ai.prompt.name": work.prompt,
                "prompt_rollouts.version": work.version,
                "gen_ai.request.model": work.judge.model,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span


def _record(
    span: Span, result: JudgeResult, *, score: float | None = None, error_type: str | None = None
) -> None:
    if not span.is_recording():
        return
    span.set_attribute("prompt_rollouts.judge.result", result.value)
    if score is not None:
        span.set_attribute("prompt_rollouts.judge.score", score)
    if error_type is not None:
        span.set_attribute("error.type", error_type)
