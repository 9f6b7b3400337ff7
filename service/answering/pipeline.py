"""One answer, start to finish: choose a version, validate, retrieve, render, call, check.

::

    answer ──run──> AnswerResult ──AnswerRecorder.record──> metrics, log event, span
                    └─ raise its error, or return its response

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
from typing import Any, Protocol, TypeVar

from api.v1alpha1 import Retrieval
from prompting.rendering import Message, guard_messages, render_messages
from prompting.variables import resolve_variables
from service.answering.cache import ResponseCache, build_cache_key
from service.answering.guardrails import assess_answer, build_protected_text
from service.answering.judge import OnlineJudge
from service.answering.outcome import Outcome
from service.answering.output_repair import (
    assess_cacheable,
    build_response_format,
    fetch_valid_output,
)
from service.answering.result import (
    AnswerRecorder,
    AnswerResult,
    RetrievalFacts,
    answer_span,
    cost_usd,
)
from service.answering.schemas import AnswerRequest, AnswerResponse, Citation, Usage
from service.catalog.catalog import Catalog
from service.catalog.registry import ServedVersion
from service.errors import AnswerableError, DeadlineExceededError, PromptingError, ServiceError
from service.llm.chat import AnswerModel, ChatRequest, ChatResponse, GroundedModel, call_model
from service.llm.resilience.deadline import Deadline
from service.llm.summarizer import build_inputs
from service.retrieval.search import (
    Passage,
    build_context,
    delimit_context,
    draw_boundary,
    reference_markers,
)
from service.settings import ModelPrice
from service.telemetry.metrics import Metrics
from service.telemetry.request_log import RequestLogger
from service.telemetry.spans import Tracing
from service.tools import ToolRunner, call_with_tools

__all__ = ["BACKSTOP_GRACE_SECONDS", "AnswerService", "PassageSearch", "cost_usd"]

#: How long after the deadline the model call is cancelled if it has not ended by itself
#: (the resilience layer ends its own attempts at the deadline; this is a backstop).
BACKSTOP_GRACE_SECONDS = 0.5

_T = TypeVar("_T")


class PassageSearch(Protocol):
    """Where the passages come from (:class:`service.retrieval.search.Retriever` in the service)."""

    async def retrieve(
        self, collection: str, question: str, top_k: int, min_score: float
    ) -> list[Passage]:
        """Up to `top_k` passages scoring at least `min_score`, best first."""
        ...


@dataclass
class _Call:
    """One request on its way through the pipeline: what it asked, and what it went through."""

    request: AnswerRequest
    request_id: str
    idempotency_key: str | None
    served: ServedVersion
    deadline: Deadline
    started: float
    retrieval: RetrievalFacts | None = None
    messages: tuple[Message, ...] = ()
    reply: ChatResponse | None = None
    leak: str | None = None
    passages: tuple[Passage, ...] = ()
    repairs: int = 0


@dataclass(frozen=True)
class _Context:
    """The retrieved context block, as the templates and the guardrails see it."""

    text: str = ""
    passages: tuple[Passage, ...] = ()
    #: The per-request boundary of the context block, and its marker lines.
    boundary: str | None = None
    markers: tuple[str, str] | None = None


@dataclass(frozen=True)
class _Prepared:
    """A request ready for the model: what to send, and what the guardrails need."""

    chat: ChatRequest
    context: _Context
    canary: str
    #: The system message minus caller and document text (``build_protected_text``).
    protected: str


@dataclass
class AnswerService:
    """Answers questions with the registry's versions, the retriever and a chat model."""

    catalog: Catalog
    retriever: PassageSearch
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
    #: The app's tracing (off unless the lifespan switched it on).
    tracing: Tracing = field(default_factory=Tracing)
    #: The sampled online judge (None: no version is judged).
    judge: OnlineJudge | None = None
    #: Shadows a canary in a shadow step (service.answering.shadow): (result, allowed).
    shadow: Callable[[AnswerResult, bool], None] | None = None
    #: Runs the calls of versions with spec.tools (None: tools are not offered).
    tools: ToolRunner | None = None
    recorder: AnswerRecorder = field(init=False)

    def __post_init__(self) -> None:
        self.recorder = AnswerRecorder(self.metrics, self.prices, self.request_log)

    async def answer(
        self,
        request: AnswerRequest,
        request_id: str,
        idempotency_key: str | None = None,
        *,
        received_at: float | None = None,
        shadow: bool = True,
    ) -> AnswerResponse:
        """Answer `request` and record it; raises the errors in AnswerableError for the problem
        handlers.

        `received_at` is when the request arrived, on `deadline_clock` (default: now):
        the version's deadline counts from then. `shadow` False: no shadow answer.
        """
        with answer_span(self.tracing) as span:
            result = await self.run(request, request_id, idempotency_key, received_at=received_at)
            self.recorder.record(result, span)
            if self.judge is not None:
                self.judge.submit(result, span)  # enqueues at most; never waits
            if self.shadow is not None:
                self.shadow(result, shadow)  # starts a background task at most; never waits
            if isinstance(result.ended, AnswerableError):
                raise result.ended
            return result.ended

    async def run(
        self,
        request: AnswerRequest,
        request_id: str,
        idempotency_key: str | None = None,
        *,
        received_at: float | None = None,
    ) -> AnswerResult:
        """Answer `request` without recording it: how it ended, and what it went through.

        A ServiceError ends the result rather than propagating; anything else propagates.
        """
        started = self.clock()
        try:
            served = self.catalog.registry.select(
                request.prompt, request.version, request.user or request_id
            )
        except AnswerableError as error:
            return AnswerResult(request, None, error, self.clock() - started)
        seconds = min(served.resource.spec.model.timeout_seconds, self.max_deadline_seconds)
        deadline = Deadline.after(seconds, start=received_at, clock=self.deadline_clock)
        call = _Call(request, request_id, idempotency_key, served, deadline, started)
        ended: AnswerResponse | ServiceError | PromptingError
        try:
            ended = await self._answer(call)
        except AnswerableError as error:
            ended = error
        return AnswerResult(
            request=request,
            served=served,
            ended=ended,
            elapsed_seconds=self.clock() - started,
            retrieval=call.retrieval,
            messages=call.messages,
            reply=call.reply,
            leak=call.leak,
            passages=call.passages,
            repairs=call.repairs,
        )

    async def _answer(self, call: _Call) -> AnswerResponse:
        prepared = await self.prepare(call)
        if isinstance(prepared, AnswerResponse):
            return prepared
        reply = await _within(
            call.deadline,
            BACKSTOP_GRACE_SECONDS,
            "the model call",
            self._complete(call.served, prepared.chat, prepared.context),
        )
        call.reply = reply
        output: Any = None
        spec = call.served.resource.spec
        if spec.output is not None:  # the output contract: JSON meeting the schema, or 502
            repair = self._model_call(call.deadline, "the output repair", prepared.context)
            held = await fetch_valid_output(
                spec.output, prepared.chat, reply, repair, call.deadline
            )
            call.reply = reply = held.reply
            call.repairs = held.repairs
            output = held.require()
        return self.conclude(
            call, prepared, reply.text, fallback_used=reply.fallback_used, output=output
        )

    async def prepare(self, call: _Call) -> _Prepared | AnswerResponse:
        """Retrieve and render: the model request, or the empty answer (nothing retrieved)."""
        spec = call.served.resource.spec
        values = resolve_variables(spec.variables, call.request.variables)
        context = _Context()
        if spec.retrieval is not None:
            context = await self._retrieve(call, spec.retrieval)
            if not context.passages:
                return self._respond(call, Outcome.UNKNOWN, spec.retrieval.empty_answer, [])
            call.passages = context.passages
        compiled = call.served.compiled
        question = call.request.question
        messages = guard_messages(
            render_messages(compiled, {**values, "question": question, "context": context.text}),
            compiled.canary,
            context.markers,
        )
        call.messages = tuple(
            Message(m.role, m.content.replace(compiled.canary, "[canary]")) for m in messages
        )
        chat_request = ChatRequest(
            model=spec.model.name,
            messages=messages,
            temperature=spec.model.temperature,
            max_tokens=spec.model.max_tokens,
            timeout_seconds=spec.model.timeout_seconds,
            question=question,
            user=call.request.user,
            fallbacks=tuple(spec.model.fallbacks),
            idempotency_key=call.idempotency_key or call.request_id,
            deadline=call.deadline,
            inputs=build_inputs(spec.variables, values, question),
            response_format=build_response_format(spec.prompt, spec.output),
        )
        inputs = [question, *(str(v) for v in values.values() if isinstance(v, str))]
        protected = build_protected_text(messages[0].content, context.markers, inputs)
        return _Prepared(chat_request, context, compiled.canary, protected)

    def conclude(
        self,
        call: _Call,
        prepared: _Prepared,
        text: str,
        *,
        fallback_used: bool,
        output: Any = None,
    ) -> AnswerResponse:
        """The response to the model's whole reply `text`, after the guardrails; `output` is
        the document of a met output contract."""
        spec = call.served.resource.spec
        verdict = assess_answer(
            text,
            list(prepared.context.passages),
            spec.guardrails,
            spec.retrieval.empty_answer if spec.retrieval else "",
            canary=prepared.canary,
            protected=prepared.protected,
        )
        if verdict.leaked:
            call.leak = verdict.reason
        outcome = verdict.outcome
        if outcome is Outcome.ANSWERED and fallback_used:
            outcome = Outcome.FALLBACK
        output = output if outcome in (Outcome.ANSWERED, Outcome.FALLBACK) else None
        return self._respond(call, outcome, verdict.answer, verdict.cited, output)

    def _model_call(
        self, deadline: Deadline, stage: str, context: _Context
    ) -> Callable[[ChatRequest], Awaitable[ChatResponse]]:
        """One more model call (no cache) within `deadline`, e.g. an output repair."""
        sources = [p.text for p in context.passages]
        return lambda request: _within(
            deadline, BACKSTOP_GRACE_SECONDS, stage, call_model(self.chat, request, sources)
        )

    async def _retrieve(self, call: _Call, retrieval: Retrieval) -> _Context:
        """The context block of the version's retrieval, delimited by a fresh boundary."""
        retrieval_started = self.clock()
        retrieved = await _within(
            call.deadline,
            0.0,
            "retrieval",
            self.retriever.retrieve(
                retrieval.collection, call.request.question, retrieval.top_k, retrieval.min_score
            ),
        )
        seconds = self.clock() - retrieval_started
        text, passages = build_context(retrieved, retrieval.max_context_tokens)
        call.retrieval = RetrievalFacts(
            collection=retrieval.collection,
            seconds=seconds,
            screened=sum(p.screened for p in retrieved),
            empty=not passages,
        )
        if not passages:
            return _Context()
        boundary = draw_boundary(passages)
        markers = reference_markers(boundary)
        return _Context(delimit_context(text, boundary), tuple(passages), boundary, markers)

    async def _complete(
        self, served: ServedVersion, request: ChatRequest, context: _Context
    ) -> ChatResponse:
        """The model's reply, from the response cache when the version opted in.

        The cache key sees the messages with the per-request boundary masked, so that
        identical requests still share a key. A grounded model gets the passages' texts.
        """
        sources = [p.text for p in context.passages]
        spec = served.resource.spec
        if spec.tools and self.tools is not None and not isinstance(self.chat, GroundedModel):
            return await call_with_tools(  # live tool data: never cached
                self.chat, request, self.tools, prompt=served.prompt, version=served.version,
                tools=spec.tools, max_rounds=spec.max_tool_rounds,
            )  # fmt: skip
        cache = spec.cache
        if not cache.enabled:
            return await call_model(self.chat, request, sources)
        keyed = request
        if context.boundary is not None:
            boundary = context.boundary
            masked = [Message(m.role, m.content.replace(boundary, "-")) for m in request.messages]
            keyed = replace(request, messages=masked)
        key = build_cache_key(served.prompt, served.version, keyed)
        cached = self.cache.get(key)
        if cached is not None:
            return replace(cached, cache_hit=True, retries=0)
        reply = await call_model(self.chat, request, sources)
        if assess_cacheable(served.resource.spec.output, reply.text):
            self.cache.put(key, reply, cache.ttl_seconds)
        return reply

    def _respond(
        self, call: _Call, outcome: Outcome, answer: str, cited: list[Passage], output: Any = None
    ) -> AnswerResponse:
        reply = call.reply
        input_tokens = reply.input_tokens if reply and not reply.cache_hit else 0
        output_tokens = reply.output_tokens if reply and not reply.cache_hit else 0
        model = reply.model if reply else None
        return AnswerResponse(
            request_id=call.request_id,
            prompt=call.served.prompt,
            version=call.served.version,
            model=model,
            outcome=outcome,
            answer=answer,
            output=output,
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
            latency_ms=round((self.clock() - call.started) * 1000, 2),
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
