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

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from api.v1alpha1 import Retrieval
from prompting.rendering import Message, guard_messages, render_messages
from prompting.variables import resolve_variables
from service.answering.cache import ResponseCache
from service.answering.call import AnswerCall, PreparedCall
from service.answering.completion import fetch_reply
from service.answering.context import Context, PassageSearch, fetch_context
from service.answering.guardrails import assess_answer, build_protected_text
from service.answering.judge import OnlineJudge
from service.answering.outcome import Outcome
from service.answering.output_repair import (
    build_response_format,
    fetch_valid_output,
)
from service.answering.respond import build_answer_response
from service.answering.result import AnswerRecorder, AnswerResult, answer_span, cost_usd
from service.answering.schemas import AnswerRequest, AnswerResponse
from service.answering.stages import within
from service.catalog.catalog import Catalog
from service.errors import AnswerableError, PromptingError, ServiceError
from service.llm.chat import AnswerModel, ChatRequest, ChatResponse, call_model
from service.llm.resilience.deadline import Deadline
from service.llm.summarizer import build_inputs
from service.retrieval.search import Passage
from service.settings import ModelPrice
from service.telemetry.metrics import Metrics
from service.telemetry.request_log import RequestLogger
from service.telemetry.spans import Tracing
from service.tools import ToolRunner

__all__ = ["BACKSTOP_GRACE_SECONDS", "AnswerService", "PassageSearch", "cost_usd"]

#: How long after the deadline the model call is cancelled if it has not ended by itself
#: (the resilience layer ends its own attempts at the deadline; this is a backstop).
BACKSTOP_GRACE_SECONDS = 0.5


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
        call = AnswerCall(request, request_id, idempotency_key, served, deadline, started)
        ended: AnswerResponse | ServiceError | PromptingError
        try:
            ended = await self.answer_whole(call)
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

    async def answer_whole(self, call: AnswerCall) -> AnswerResponse:
        """Answer `call` with one model reply (tools and the output contract included): the
        plain path, and the stream's for versions that cannot stream token by token."""
        prepared = await self.prepare(call)
        if isinstance(prepared, AnswerResponse):
            return prepared
        reply = await within(
            call.deadline,
            BACKSTOP_GRACE_SECONDS,
            "the model call",
            fetch_reply(
                self.chat, self.cache, self.tools, call.served, prepared.chat, prepared.context
            ),
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

    async def prepare(self, call: AnswerCall) -> PreparedCall | AnswerResponse:
        """Retrieve and render: the model request, or the empty answer (nothing retrieved)."""
        spec = call.served.resource.spec
        values = resolve_variables(spec.variables, call.request.variables)
        context = Context()
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
        return PreparedCall(chat_request, context, compiled.canary, protected)

    def conclude(
        self,
        call: AnswerCall,
        prepared: PreparedCall,
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
        self, deadline: Deadline, stage: str, context: Context
    ) -> Callable[[ChatRequest], Awaitable[ChatResponse]]:
        """One more model call (no cache) within `deadline`, e.g. an output repair."""
        sources = [p.text for p in context.passages]
        return lambda request: within(
            deadline, BACKSTOP_GRACE_SECONDS, stage, call_model(self.chat, request, sources)
        )

    async def _retrieve(self, call: AnswerCall, retrieval: Retrieval) -> Context:
        """The context block of the version's retrieval, delimited by a fresh boundary."""
        question = call.request.question
        context, call.retrieval = await fetch_context(
            self.retriever, retrieval, question, call.deadline, self.clock
        )
        return context

    def _respond(
        self,
        call: AnswerCall,
        outcome: Outcome,
        answer: str,
        cited: list[Passage],
        output: Any = None,
    ) -> AnswerResponse:
        elapsed = self.clock() - call.started
        return build_answer_response(
            call, outcome, answer, cited, prices=self.prices, elapsed_seconds=elapsed, output=output
        )
