"""One answer, start to finish: choose a version, validate, retrieve, render, call, check.

One :class:`Deadline` per request, started when the request arrived (``received_at``,
so time spent queueing counts), covers every stage: retrieval runs under it, the
model call gets it (and a backstop just after it), and a stage that starts after it
passed fails fast with ``DeadlineExceededError`` (503 + Retry-After).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

import structlog

from service.cache import ResponseCache, build_cache_key
from service.catalog import Catalog
from service.chat import AnswerModel, ChatRequest, ChatResponse, call_model
from service.errors import DeadlineExceededError, ServiceError
from service.guardrails import Verdict, assess_answer, build_protected_text
from service.metrics import Metrics
from service.outcome import Outcome, outcome_of_error
from service.problems import status_of
from service.redaction import redact
from service.registry import ServedVersion
from service.rendering import Message, guard_messages, render_messages
from service.request_log import RequestLogger, RequestRecord
from service.resilience.deadline import Deadline
from service.retrieval import (
    Passage,
    Retriever,
    build_context,
    delimit_context,
    draw_boundary,
    reference_markers,
)
from service.schemas import AnswerRequest, AnswerResponse, Citation, Usage
from service.settings import ModelPrice
from service.tracing import answer_span, record_answer
from service.variables import resolve_variables

__all__ = ["AnswerService", "cost_usd"]

_log = structlog.get_logger("service.guardrails")
#: Longest excerpt of a leaking answer in its warning (redacted, canary masked).
_LEAK_EXCERPT_CHARS = 200

#: How long after the deadline the model call is cancelled if it has not ended by itself
#: (the resilience layer ends its own attempts at the deadline; this is a backstop).
BACKSTOP_GRACE_SECONDS = 0.5

_T = TypeVar("_T")


def cost_usd(
    prices: Mapping[str, ModelPrice], model: str, input_tokens: int, output_tokens: int
) -> float:
    """What one call cost, from the settings' price table; unlisted models cost 0 (pure)."""
    price = prices.get(model)
    if price is None:
        return 0.0
    total = input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok
    return round(total / 1_000_000, 8)


@dataclass
class _Trail:
    """What one request went through, for its log event."""

    messages: list[Message] = field(default_factory=list)
    reply: ChatResponse | None = None


@dataclass
class AnswerService:
    """Answers questions with the registry's versions, the retriever and a chat model."""

    catalog: Catalog
    retriever: Retriever
    chat: AnswerModel
    prices: Mapping[str, ModelPrice]
    metrics: Metrics = field(default_factory=Metrics)
    cache: ResponseCache = field(default_factory=ResponseCache)
    request_log: RequestLogger | None = None
    clock: Callable[[], float] = time.perf_counter
    #: Upper bound on a version's timeoutSeconds (MODEL_MAX_DEADLINE_SECONDS).
    max_deadline_seconds: float = 60.0
    #: The clock of deadlines (and of `received_at`): monotonic, shared with the model layer.
    deadline_clock: Callable[[], float] = time.monotonic

    async def answer(
        self,
        request: AnswerRequest,
        request_id: str,
        idempotency_key: str | None = None,
        *,
        received_at: float | None = None,
    ) -> AnswerResponse:
        """Answer `request`; raises ServiceError subclasses for the problem handlers.

        `received_at` is when the request arrived, on `deadline_clock` (default: now):
        the version's deadline counts from then.
        """
        started = self.clock()
        with answer_span() as span:
            served = self.catalog.registry.select(
                request.prompt, request.version, request.user or request_id
            )
            record_answer(span, prompt=served.prompt, version=served.version)
            trail = _Trail()
            seconds = min(served.resource.spec.model.timeout_seconds, self.max_deadline_seconds)
            deadline = Deadline.after(seconds, start=received_at, clock=self.deadline_clock)
            try:
                response = await self._answer(
                    served, request, request_id, idempotency_key, started, trail, deadline
                )
            except ServiceError as error:
                outcome = outcome_of_error(error)
                self._observe(served, outcome, started)
                self._log(served, request, trail, outcome, started, error=error)
                raise
            self._observe(served, response.outcome, started)
            self._log(served, request, trail, response.outcome, started, response=response)
            record_answer(span, outcome=response.outcome)
            return response

    def _log(
        self,
        served: ServedVersion,
        request: AnswerRequest,
        trail: _Trail,
        outcome: Outcome,
        started: float,
        *,
        response: AnswerResponse | None = None,
        error: ServiceError | None = None,
    ) -> None:
        """One `request` log event, content per the configured mode."""
        if self.request_log is None:
            return
        reply = trail.reply
        self.request_log.log(
            RequestRecord(
                prompt=served.prompt,
                version=served.version,
                model=reply.model if reply else None,
                outcome=outcome.value,
                status=status_of(error) if error else 200,
                latency_ms=round((self.clock() - started) * 1000, 2),
                input_tokens=response.usage.input_tokens if response else 0,
                output_tokens=response.usage.output_tokens if response else 0,
                cost_usd=response.usage.cost_usd if response else 0.0,
                retries=reply.retries if reply else 0,
                cache_hit=bool(reply and reply.cache_hit),
                fallback_used=bool(reply and reply.fallback_used),
                messages=[(m.role, m.content) for m in trail.messages],
                response=response.answer if response else None,
                variables=request.variables,
                error=str(error) if error else None,
            )
        )

    async def _answer(
        self,
        served: ServedVersion,
        request: AnswerRequest,
        request_id: str,
        idempotency_key: str | None,
        started: float,
        trail: _Trail,
        deadline: Deadline,
    ) -> AnswerResponse:
        spec = served.resource.spec
        values = resolve_variables(spec.variables, request.variables)
        passages: list[Passage] = []
        context = ""
        boundary: str | None = None
        markers: tuple[str, str] | None = None
        if spec.retrieval is not None:
            retrieval_started = self.clock()
            retrieved = await _within(
                deadline,
                0.0,
                "retrieval",
                self.retriever.retrieve(
                    spec.retrieval.collection,
                    request.question,
                    spec.retrieval.top_k,
                    spec.retrieval.min_score,
                ),
            )
            self.metrics.retrieval_duration.labels(spec.retrieval.collection).observe(
                self.clock() - retrieval_started
            )
            screened = sum(p.screened for p in retrieved)
            if screened:
                self.metrics.injection_screened.labels(spec.retrieval.collection).inc(screened)
            context, passages = build_context(retrieved, spec.retrieval.max_context_tokens)
            if not passages:
                self.metrics.empty_retrievals.labels(served.prompt, served.version).inc()
                return self._respond(
                    served=served,
                    request_id=request_id,
                    started=started,
                    reply=None,
                    outcome=Outcome.UNKNOWN,
                    answer=spec.retrieval.empty_answer,
                    cited=[],
                )
            boundary = draw_boundary(passages)
            markers = reference_markers(boundary)
            context = delimit_context(context, boundary)
        compiled = served.compiled
        messages = guard_messages(
            render_messages(compiled, {**values, "question": request.question, "context": context}),
            compiled.canary,
            markers,
        )
        trail.messages = [
            Message(m.role, m.content.replace(compiled.canary, "[canary]")) for m in messages
        ]
        chat_request = ChatRequest(
            model=spec.model.name,
            messages=messages,
            temperature=spec.model.temperature,
            max_tokens=spec.model.max_tokens,
            timeout_seconds=spec.model.timeout_seconds,
            question=request.question,
            user=request.user,
            fallbacks=tuple(spec.model.fallbacks),
            idempotency_key=idempotency_key or request_id,
            deadline=deadline,
        )
        reply = await _within(
            deadline,
            BACKSTOP_GRACE_SECONDS,
            "the model call",
            self._complete(served, chat_request, boundary, [p.text for p in passages]),
        )
        trail.reply = reply
        self._count_usage(served, reply)
        empty_answer = spec.retrieval.empty_answer if spec.retrieval else ""
        inputs = [request.question, *(str(v) for v in values.values() if isinstance(v, str))]
        verdict = assess_answer(
            reply.text,
            passages,
            spec.guardrails,
            empty_answer,
            canary=compiled.canary,
            protected=build_protected_text(messages[0].content, markers, inputs),
        )
        if verdict.leaked:
            self._warn_leak(served, verdict, reply.text, compiled.canary)
        outcome = verdict.outcome
        if outcome is Outcome.ANSWERED and reply.fallback_used:
            outcome = Outcome.FALLBACK
        return self._respond(
            served=served,
            request_id=request_id,
            started=started,
            reply=reply,
            outcome=outcome,
            answer=verdict.answer,
            cited=verdict.cited,
        )

    def _warn_leak(self, served: ServedVersion, verdict: Verdict, answer: str, canary: str) -> None:
        """Log a refused leak: why, and (unless content logging is off) a redacted excerpt."""
        excerpt = None
        if self.request_log is None or self.request_log.mode.value != "off":
            masked = answer.replace(canary, "[canary]")[:_LEAK_EXCERPT_CHARS]
            excerpt = redact(masked)
        _log.warning(
            "output check refused an answer that reveals the system message",
            prompt=served.prompt,
            version=served.version,
            reason=verdict.reason,
            answer_excerpt=excerpt,
        )

    async def _complete(
        self,
        served: ServedVersion,
        request: ChatRequest,
        boundary: str | None,
        sources: list[str],
    ) -> ChatResponse:
        """The model's reply, from the response cache when the version opted in.

        The cache key sees the messages with the per-request boundary masked, so that
        identical requests still share a key.
        """
        cache = served.resource.spec.cache
        if not cache.enabled:
            return await call_model(self.chat, request, sources)
        keyed = request
        if boundary is not None:
            masked = [Message(m.role, m.content.replace(boundary, "-")) for m in request.messages]
            keyed = replace(request, messages=masked)
        key = build_cache_key(served.prompt, served.version, keyed)
        cached = self.cache.get(key)
        if cached is not None:
            return replace(cached, cache_hit=True, retries=0)
        reply = await call_model(self.chat, request, sources)
        self.cache.put(key, reply, cache.ttl_seconds)
        return reply

    def _count_usage(self, served: ServedVersion, reply: ChatResponse) -> None:
        if reply.cache_hit:
            self.metrics.cache_hits.labels(served.prompt, served.version).inc()
            return
        labels = (served.prompt, served.version, reply.model)
        self.metrics.tokens.labels(*labels, "input").inc(reply.input_tokens)
        self.metrics.tokens.labels(*labels, "output").inc(reply.output_tokens)
        cost = cost_usd(self.prices, reply.model, reply.input_tokens, reply.output_tokens)
        self.metrics.cost.labels(served.prompt, served.version, reply.model).inc(cost)

    def _observe(self, served: ServedVersion, outcome: Outcome, started: float) -> None:
        self.metrics.requests.labels(served.prompt, served.version, outcome.value).inc()
        self.metrics.request_duration.labels(served.prompt, served.version).observe(
            self.clock() - started
        )

    def _respond(
        self,
        *,
        served: ServedVersion,
        request_id: str,
        started: float,
        reply: ChatResponse | None,
        outcome: Outcome,
        answer: str,
        cited: list[Passage],
    ) -> AnswerResponse:
        input_tokens = reply.input_tokens if reply and not reply.cache_hit else 0
        output_tokens = reply.output_tokens if reply and not reply.cache_hit else 0
        model = reply.model if reply else None
        return AnswerResponse(
            request_id=request_id,
            prompt=served.prompt,
            version=served.version,
            model=model,
            outcome=outcome,
            answer=answer,
            citations=[
                Citation(id=p.passage_id, source=p.source, score=round(p.score, 4)) for p in cited
            ],
            usage=Usage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost_usd(self.prices, model, input_tokens, output_tokens)
                if model
                else 0.0,
            ),
            cache_hit=bool(reply and reply.cache_hit),
            latency_ms=round((self.clock() - started) * 1000, 2),
        )


async def _within(deadline: Deadline, grace: float, stage: str, work: Awaitable[_T]) -> _T:
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
