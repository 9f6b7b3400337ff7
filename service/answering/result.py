"""What one answer went through, and the one place it is recorded.

::

    AnswerService.run ──> AnswerResult ──AnswerRecorder.record──> metrics
                                                               ├─> the `request` log event
                                                               └─> the answer span's attributes

The pipeline (:mod:`service.answering.pipeline`) only answers; it never touches metrics, the
request log or the answer span. Everything they need is in the result.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import structlog
from opentelemetry.trace import Span, SpanKind
from prometheus_client.metrics import MetricWrapperBase

from prompting.redaction import redact
from prompting.rendering import Message
from service.answering.outcome import Outcome, outcome_of_error
from service.answering.schemas import AnswerRequest, AnswerResponse
from service.catalog.registry import ServedVersion
from service.errors import AnswerableError, PromptingError, ServiceError
from service.http.problems import status_of
from service.llm.chat import ChatResponse
from service.retrieval.search import Passage
from service.settings import ModelPrice
from service.telemetry.metrics import Metrics
from service.telemetry.request_log import ContentMode, RequestLogger, RequestRecord
from service.telemetry.spans import Tracing

__all__ = [
    "AnswerRecorder",
    "AnswerResult",
    "RetrievalFacts",
    "answer_span",
    "build_request_record",
    "cost_usd",
    "record_answer",
]


_log = structlog.get_logger("service.answering.guardrails")
#: Outcomes whose answer is the model's own text (measured, and may cite passages).
_MODEL_ANSWERS = frozenset({Outcome.ANSWERED, Outcome.FALLBACK})
#: Longest excerpt of a leaking answer in its warning (redacted, canary masked).
_LEAK_EXCERPT_CHARS = 200
_M = TypeVar("_M", bound=MetricWrapperBase)


def cost_usd(
    prices: Mapping[str, ModelPrice], model: str, input_tokens: int, output_tokens: int
) -> float:
    """What one call cost, from the settings' price table; unlisted models cost 0 (pure)."""
    price = prices.get(model)
    if price is None:
        return 0.0
    total = input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok
    return round(total / 1_000_000, 8)


@dataclass(frozen=True)
class RetrievalFacts:
    """What the retrieval stage did (only when it returned)."""

    collection: str
    seconds: float
    #: Instruction-like sentences screened out of the retrieved passages.
    screened: int
    #: No passage made it into the context: the answer is the version's empty answer.
    empty: bool


@dataclass(frozen=True)
class AnswerResult:
    """How one answer ended and what it went through on the way."""

    request: AnswerRequest
    #: The version that answered; None when none could be chosen.
    served: ServedVersion | None
    #: The response sent, or the error the problem handlers turn into one.
    ended: AnswerResponse | ServiceError | PromptingError
    elapsed_seconds: float
    retrieval: RetrievalFacts | None = None
    #: The rendered messages, the canary masked (for the log event).
    messages: tuple[Message, ...] = ()
    #: The model's reply, when a model was called (or the cache answered).
    reply: ChatResponse | None = None
    #: Why the output check refused the reply as revealing the system message, if it did.
    leak: str | None = None
    #: The passages in the model's context (for the online judge).
    passages: tuple[Passage, ...] = ()
    #: Repair calls made to meet the version's output contract.
    repairs: int = 0

    @property
    def response(self) -> AnswerResponse | None:
        """The response, unless the request failed."""
        return None if isinstance(self.ended, AnswerableError) else self.ended

    @property
    def error(self) -> ServiceError | PromptingError | None:
        """The error the request failed with, if it did."""
        return self.ended if isinstance(self.ended, AnswerableError) else None

    @property
    def outcome(self) -> Outcome:
        """The outcome tag of the answer."""
        if isinstance(self.ended, AnswerableError):
            return outcome_of_error(self.ended)
        return self.ended.outcome

    @property
    def status(self) -> int:
        """The HTTP status the answer gets."""
        return status_of(self.ended) if isinstance(self.ended, AnswerableError) else 200


@dataclass
class AnswerRecorder:
    """Emits the metrics, the log event and the span attributes of an answer, once."""

    metrics: Metrics
    prices: Mapping[str, ModelPrice]
    request_log: RequestLogger | None = None
    #: Label children by (metric, values): prometheus_client's ``labels()`` checks and
    #: locks on every call; the label sets are those the registry keeps anyway.
    _children: dict[tuple[object, tuple[str, ...]], Any] = field(
        default_factory=dict, init=False, repr=False
    )

    def _child(self, metric: _M, *values: str) -> _M:
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return cast("_M", child)

    def record(self, result: AnswerResult, span: Span) -> None:
        """Record `result`; a request for which no version was chosen only marks the span."""
        served = result.served
        if served is None:
            record_answer(span, outcome=result.outcome)
            return
        record_answer(span, prompt=served.prompt, version=served.version, outcome=result.outcome)
        self._count_retrieval(served, result.retrieval)
        if result.reply is not None:
            self._count_usage(served, result.reply)
        labels = (served.prompt, served.version)
        self._child(self.metrics.requests, *labels, result.outcome.value).inc()
        self._child(self.metrics.request_duration, *labels).observe(result.elapsed_seconds)
        if result.repairs:
            self._child(self.metrics.output_repairs, *labels).inc(result.repairs)
        self._count_quality(served, result.response)
        if result.leak is not None and result.reply is not None:
            self._warn_leak(served, result.leak, result.reply.text)
        if self.request_log is not None:
            self.request_log.log(build_request_record(served, result))

    def _warn_leak(self, served: ServedVersion, reason: str, answer: str) -> None:
        """Log a refused leak: why, and (unless content logging is off) a redacted excerpt."""
        excerpt = None
        if self.request_log is None or self.request_log.mode is not ContentMode.OFF:
            masked = answer.replace(served.compiled.canary, "[canary]")[:_LEAK_EXCERPT_CHARS]
            excerpt = redact(masked)
        _log.warning(
            "output check refused an answer that reveals the system message",
            prompt=served.prompt,
            version=served.version,
            reason=reason,
            answer_excerpt=excerpt,
        )

    def _count_quality(self, served: ServedVersion, response: AnswerResponse | None) -> None:
        """Length of the model's answers sent (answered/fallback), and those citing nothing."""
        if response is None or response.outcome not in _MODEL_ANSWERS:
            return
        labels = (served.prompt, served.version)
        self._child(self.metrics.answer_length, *labels).observe(len(response.answer))
        if not response.citations:
            self._child(self.metrics.answers_uncited, *labels).inc()

    def _count_retrieval(self, served: ServedVersion, facts: RetrievalFacts | None) -> None:
        if facts is None:
            return
        self._child(self.metrics.retrieval_duration, facts.collection).observe(facts.seconds)
        if facts.screened:
            self._child(self.metrics.injection_screened, facts.collection).inc(facts.screened)
        if facts.empty:
            self._child(self.metrics.empty_retrievals, served.prompt, served.version).inc()

    def _count_usage(self, served: ServedVersion, reply: ChatResponse) -> None:
        if reply.cache_hit:
            self._child(self.metrics.cache_hits, served.prompt, served.version).inc()
            return
        labels = (served.prompt, served.version, reply.model)
        self._child(self.metrics.tokens, *labels, "input").inc(reply.input_tokens)
        self._child(self.metrics.tokens, *labels, "output").inc(reply.output_tokens)
        cost = cost_usd(self.prices, reply.model, reply.input_tokens, reply.output_tokens)
        self._child(self.metrics.cost, *labels).inc(cost)


def build_request_record(served: ServedVersion, result: AnswerResult) -> RequestRecord:
    """The `request` log event of an answer (pure)."""
    reply, response, error = result.reply, result.response, result.error
    return RequestRecord(
        prompt=served.prompt,
        version=served.version,
        model=reply.model if reply else None,
        outcome=result.outcome.value,
        status=result.status,
        latency_ms=round(result.elapsed_seconds * 1000, 2),
        input_tokens=response.usage.input_tokens if response else 0,
        output_tokens=response.usage.output_tokens if response else 0,
        cost_usd=response.usage.cost_usd if response else 0.0,
        retries=reply.retries if reply else 0,
        cache_hit=bool(reply and reply.cache_hit),
        fallback_used=bool(reply and reply.fallback_used),
        messages=[(m.role, m.content) for m in result.messages],
        response=response.answer if response else None,
        variables=result.request.variables,
        error=str(error) if error else None,
    )


@contextmanager
def answer_span(tracing: Tracing) -> Iterator[Span]:
    """``answer`` (INTERNAL) around the whole pipeline of one answer.

    :func:`record_answer` names it ``answer {prompt}`` once a version is chosen (so names
    stay bounded by the manifests) and sets the outcome (:meth:`AnswerRecorder.record`).
    """
    with tracing.operation("answer", SpanKind.INTERNAL, {}) as span:
        yield span


def record_answer(
    span: Span, *, prompt: str | None = None, version: str | None = None, outcome: str | None = None
) -> None:
    """The chosen prompt and version, or the outcome, of an answer span."""
    if not span.is_recording():
        return
    if prompt is not None:
        span.update_name(f"answer {prompt}")
        span.set_attribute("gen_ai.prompt.name", prompt)
    if version is not None:
        span.set_attribute("prompt_rollouts.version", version)
    if outcome is not None:
        span.set_attribute("prompt_rollouts.outcome", str(outcome))
