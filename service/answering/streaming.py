"""Streamed answers: the pipeline up to the model's first piece, then the reply as it comes.

::

    open_answer_stream ── choose, validate, retrieve, render, open the model stream
        │   (retries, fallbacks, breaker, rate limits: all before the first piece)
        │   fails here → the same AnswerableError as AnswerService.answer (recorded)
        └─> AnswerStream.events():  Delta* then Final (outcome, citations, usage)
                                    or Delta* then Failed (the upstream broke mid-stream)

Text passes the :class:`~service.answering.stream_guard.StreamGuard`: a forbidden phrase,
the canary or a refusal opening is never sent; such a stream ends with ``Final`` whose
outcome is ``refused`` and whose answer is the refusal answer. The whole reply is judged
at the end like a plain answer (:meth:`AnswerService.conclude`): the held-back window is
sent only when the outcome is ``answered``/``fallback``; otherwise ``Final`` carries the
fixed answer (refusal, or the empty answer when required citations are missing) and the
deltas already sent are to be replaced by it.

Every stream is recorded exactly once (metrics, the ``request`` log event, the answer span,
the judge): when it ends, fails, or is closed early (a client that went away: outcome
``error``, :class:`StreamAbandonedError`). The response cache is not used by streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from service.answering.call import AnswerCall, PreparedCall
from service.answering.outcome import Outcome, outcome_of_error
from service.answering.pipeline import BACKSTOP_GRACE_SECONDS, AnswerService
from service.answering.result import AnswerResult
from service.answering.schemas import AnswerRequest, AnswerResponse
from service.answering.stream_events import (
    Delta,
    Failed,
    Final,
    StreamAbandonedError,
    StreamEvent,
)
from service.answering.stream_guard import StreamGuard
from service.errors import AnswerableError, DeadlineExceededError, PromptingError, ServiceError
from service.llm.chat import ChatResponse
from service.llm.resilience.deadline import Deadline
from service.llm.streams import ChatStream, open_model_stream

__all__ = [
    "AnswerStream",
    "Delta",
    "Failed",
    "Final",
    "StreamAbandonedError",
    "StreamEvent",
    "open_answer_stream",
]


class AnswerStream:
    """The events of one streamed answer; recorded exactly once, however it ends."""

    def __init__(
        self,
        service: AnswerService,
        call: AnswerCall,
        span: Span,
        arrived: float,
        opened: tuple[PreparedCall, ChatStream, StreamGuard] | AnswerResponse,
    ) -> None:
        self._service = service
        self._call = call
        self._span = span
        self._arrived = arrived
        self._opened = opened
        self._recorded = False
        self._ttft: float | None = None
        self._events: AsyncIterator[StreamEvent] | None = None

    @property
    def request_id(self) -> str:
        """The request's id."""
        return self._call.request_id

    @property
    def version(self) -> str:
        """The version answering."""
        return self._call.served.version

    def events(self) -> AsyncIterator[StreamEvent]:
        """The events, once: deltas, then a Final or a Failed."""
        if self._events is None:
            self._events = self._run()
        return self._events

    async def aclose(self) -> None:
        """Stop: close the upstream, and record the stream if it had not ended."""
        if self._events is not None:
            closer = getattr(self._events, "aclose", None)
            if closer is not None:
                await closer()
        if not isinstance(self._opened, AnswerResponse):
            await self._opened[1].aclose()
        self._record(StreamAbandonedError("the client closed the stream before it ended"))

    async def _run(self) -> AsyncIterator[StreamEvent]:
        try:
            if isinstance(self._opened, AnswerResponse):  # answered whole: one delta
                answered = self._opened.outcome in (Outcome.ANSWERED, Outcome.FALLBACK)
                if answered and self._opened.answer:
                    self._first_token()
                    yield Delta(self._opened.answer)
                self._record(self._opened)
                yield Final(self._opened)
                return
            prepared, stream, guard = self._opened
            try:
                async for piece in self._pieces(stream):
                    released = guard.feed(piece)
                    if released:
                        self._first_token()
                        yield Delta(released)
                    if guard.tripped is not None:
                        break
            except AnswerableError as error:
                self._keep_reply(stream, guard.text)
                self._record(error)
                yield Failed(self.request_id, outcome_of_error(error), error)
                return
            self._keep_reply(stream, guard.text)
            response = self._service.conclude(
                self._call, prepared, guard.text.strip(), fallback_used=stream.fallback_used
            )
            if response.outcome in (Outcome.ANSWERED, Outcome.FALLBACK) and (rest := guard.rest()):
                self._first_token()
                yield Delta(rest)
            self._record(response)
            yield Final(response)
        finally:
            if not isinstance(self._opened, AnswerResponse):
                await self._opened[1].aclose()
            self._record(StreamAbandonedError("the client closed the stream before it ended"))

    async def _pieces(self, stream: ChatStream) -> AsyncIterator[str]:
        """The stream's pieces, none read past the deadline (DeadlineExceededError)."""
        yield stream.first
        deadline = self._call.deadline
        while True:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise DeadlineExceededError("deadline reached while streaming the answer")
            try:
                async with asyncio.timeout(remaining + BACKSTOP_GRACE_SECONDS) as scope:
                    piece = await anext(stream.rest)
            except StopAsyncIteration:
                return
            except TimeoutError as error:
                if scope.expired():
                    raise DeadlineExceededError(
                        "deadline reached while streaming the answer"
                    ) from error
                raise
            yield piece

    def _first_token(self) -> None:
        if self._ttft is None:
            self._ttft = self._service.deadline_clock() - self._arrived

    def _keep_reply(self, stream: ChatStream, text: str) -> None:
        self._call.reply = ChatResponse(
            text=text.strip(),
            model=stream.model,
            input_tokens=stream.usage.input_tokens,
            output_tokens=stream.usage.output_tokens,
            retries=stream.retries,
            fallback_used=stream.fallback_used,
        )

    def _record(self, ended: AnswerResponse | ServiceError | PromptingError) -> None:
        if self._recorded:
            return
        self._recorded = True
        _finish(self._service, self._call, self._span, ended, self._ttft)


def _result(
    service: AnswerService, call: AnswerCall, ended: AnswerResponse | ServiceError | PromptingError
) -> AnswerResult:
    return AnswerResult(
        request=call.request,
        served=call.served,
        ended=ended,
        elapsed_seconds=service.clock() - call.started,
        retrieval=call.retrieval,
        messages=call.messages,
        reply=call.reply,
        leak=call.leak,
        passages=call.passages,
    )


def _finish(
    service: AnswerService,
    call: AnswerCall,
    span: Span,
    ended: AnswerResponse | ServiceError | PromptingError,
    ttft: float | None,
) -> None:
    """Record a stream (metrics, log, span, judge) and end its span."""
    result = _result(service, call, ended)
    try:
        service.recorder.record(result, span)
        if ttft is not None:
            service.metrics.time_to_first_token.labels(
                call.served.prompt, call.served.version
            ).observe(ttft)
        if service.judge is not None and isinstance(ended, AnswerResponse):
            service.judge.submit(result, span)
    finally:
        span.end()


async def open_answer_stream(
    service: AnswerService,
    request: AnswerRequest,
    request_id: str,
    idempotency_key: str | None = None,
    *,
    received_at: float | None = None,
) -> AnswerStream:
    """Everything up to the model's first piece; raises what `AnswerService.answer` raises
    (recorded) when the request fails before it."""
    arrived = received_at if received_at is not None else service.deadline_clock()
    tracing = service.tracing
    span = (
        tracing.tracer.start_span("answer", kind=SpanKind.INTERNAL)
        if tracing.enabled
        else trace.INVALID_SPAN
    )
    started = service.clock()
    with trace.use_span(span, end_on_exit=False):
        try:
            served = service.catalog.registry.select(
                request.prompt, request.version, request.user or request_id
            )
        except AnswerableError as error:
            result = AnswerResult(request, None, error, service.clock() - started)
            service.recorder.record(result, span)
            span.end()
            raise
        seconds = min(served.resource.spec.model.timeout_seconds, service.max_deadline_seconds)
        deadline = Deadline.after(seconds, start=received_at, clock=service.deadline_clock)
        call = AnswerCall(request, request_id, idempotency_key, served, deadline, started)
        try:
            opened = await _open(service, call)
        except AnswerableError as error:
            _finish(service, call, span, error, None)
            raise
        except BaseException:
            span.end()
            raise
    return AnswerStream(service, call, span, arrived, opened)


async def _open(
    service: AnswerService, call: AnswerCall
) -> tuple[PreparedCall, ChatStream, StreamGuard] | AnswerResponse:
    spec = call.served.resource.spec
    if spec.output is not None or spec.tools:
        # An output contract is checked (and repaired) on the whole document, and tool
        # rounds come before any answer text: answered whole, sent as one delta.
        return await service.answer_whole(call)
    prepared = await service.prepare(call)
    if isinstance(prepared, AnswerResponse):
        return prepared
    remaining = call.deadline.remaining()
    if remaining <= 0:
        raise DeadlineExceededError("deadline reached before the model call")
    sources = [p.text for p in prepared.context.passages]
    try:
        async with asyncio.timeout(remaining + BACKSTOP_GRACE_SECONDS) as scope:
            stream = await open_model_stream(service.chat, prepared.chat, sources)
    except TimeoutError as error:
        if scope.expired():
            raise DeadlineExceededError("deadline reached during the model call") from error
        raise
    guardrails = call.served.resource.spec.guardrails
    guard = StreamGuard(guardrails.forbidden_phrases, prepared.canary, prepared.protected)
    return prepared, stream, guard
