"""Span helpers of the GenAI semantic conventions: chat, embeddings and retrieval spans.

::

    answer policy-qa                  service.answering.result.answer_span
    ├── retrieval policies            retrieval_span: collection, top_k, rows returned
    │   └── embeddings <model>        embedding_span: one per embed() call
    │       └── POST                  client span (httpx), remote embedders only
    └── chat gpt-4o-mini              chat_span: one per upstream attempt
        └── POST                      client span (httpx)

Every helper records through a :class:`Tracing`: one per app, handed to the components
that trace (retriever, embedders, chat model, answering) when they are built, and
switched on by :func:`service.telemetry.tracing.configure_tracing` in the lifespan. While it is
off (the default, and always outside the service) every helper is a no-op. There is no
module state: two apps in one process trace independently.

Message content (prompts, answers, retrieval queries) is recorded only when the
``Tracing`` says so (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``), and
only after :func:`prompting.redaction.redact`.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import NoOpTracer, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from prompting.redaction import redact
from service.telemetry.span_attributes import (
    RetrievedDocument,
    build_chat_attributes,
    build_chat_response_attributes,
    build_documents,
    build_error_type,
    build_finish_reasons,
    build_input_messages,
    build_output_messages,
    build_server_attributes,
)

if TYPE_CHECKING:
    from service.llm.chat import ChatRequest, ChatResponse

__all__ = [
    "ONNX_PROVIDER",
    "OPENAI_PROVIDER",
    "Tracing",
    "chat_span",
    "embedding_span",
    "record_chat_response",
    "record_retrieval",
    "retrieval_span",
]

#: ``gen_ai.provider.name`` of OpenAI-compatible endpoints.
OPENAI_PROVIDER = "openai"
#: ``gen_ai.provider.name`` of the bundled in-process model (not a well-known value).
ONNX_PROVIDER = "onnxruntime"


# --- The tracer of one app ------------------------------------------------------------


@dataclass
class Tracing:
    """The tracer an app's components record spans with; off (no-op) until switched on."""

    tracer: Tracer = field(default_factory=NoOpTracer)
    #: Whether spans carry (redacted) message content.
    capture_content: bool = False
    enabled: bool = False

    def switch_on(self, tracer: Tracer, *, capture_content: bool) -> None:
        """Record spans with `tracer` from now on."""
        self.tracer, self.capture_content, self.enabled = tracer, capture_content, True

    def switch_off(self) -> None:
        """Back to no-op spans."""
        self.tracer, self.capture_content, self.enabled = NoOpTracer(), False, False

    @contextmanager
    def operation(
        self, name: str, kind: SpanKind, attributes: Mapping[str, AttributeValue]
    ) -> Iterator[Span]:
        """A span around the block (nothing while off); an escaping error is recorded on it."""
        if not self.enabled:
            yield trace.INVALID_SPAN
            return
        with self.tracer.start_as_current_span(
            name,
            kind=kind,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as error:
                _record_error(span, error)
                raise


def _record_error(span: Span, error: BaseException) -> None:
    """``error.type``, an ERROR status and an exception event, its message redacted."""
    if not span.is_recording():
        return
    kind = type(error).__qualname__
    message = redact(str(error))
    stacktrace = "".join(traceback.format_tb(error.__traceback__)) + f"{kind}: {message}"
    span.set_attribute("error.type", build_error_type(error))
    span.set_status(Status(StatusCode.ERROR, message or kind))
    span.record_exception(
        error, attributes={"exception.message": message, "exception.stacktrace": stacktrace}
    )


@contextmanager
def chat_span(
    tracing: Tracing, request: ChatRequest, *, provider: str, server_url: str | None = None
) -> Iterator[Span]:
    """``chat {model}`` (CLIENT) around one upstream attempt; ``error.type`` if it fails.

    On success call :func:`record_chat_response`. With content capture on, the request's
    messages go in ``gen_ai.input.messages`` (redacted).
    """
    if not tracing.enabled:  # no attributes built for a span that is never recorded
        yield trace.INVALID_SPAN
        return
    attributes = build_chat_attributes(
        provider=provider,
        model=request.model,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        server_url=server_url,
    )
    with tracing.operation(f"chat {request.model}", SpanKind.CLIENT, attributes) as span:
        if tracing.capture_content and span.is_recording():
            span.set_attribute("gen_ai.input.messages", build_input_messages(request.messages))
        yield span


def record_chat_response(
    tracing: Tracing, span: Span, reply: ChatResponse, body: bytes | None = None
) -> None:
    """Usage tokens (as billed), and the response's id, model and finish reasons (from
    `body`, the upstream's JSON)."""
    if not span.is_recording():
        return
    payload: object = None
    if body is not None:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
    span.set_attributes(
        {
            "gen_ai.usage.input_tokens": reply.input_tokens,
            "gen_ai.usage.output_tokens": reply.output_tokens,
            **build_chat_response_attributes(payload),
        }
    )
    if tracing.capture_content:
        reasons = build_finish_reasons(payload)
        output = build_output_messages(reply.text, reasons[0] if reasons else "stop")
        span.set_attribute("gen_ai.output.messages", output)


@contextmanager
def embedding_span(
    tracing: Tracing,
    model: str,
    count: int,
    *,
    provider: str,
    server_url: str | None = None,
    dimension: int | None = None,
) -> Iterator[Span]:
    """``embeddings {model}`` around one embed() call of `count` texts.

    CLIENT for a remote endpoint (`server_url`), INTERNAL for an in-process model.
    """
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "prompt_rollouts.embeddings.inputs": count,
    }
    if dimension is not None:
        attributes["gen_ai.embeddings.dimension.count"] = dimension
    attributes |= build_server_attributes(server_url)
    kind = SpanKind.CLIENT if server_url else SpanKind.INTERNAL
    with tracing.operation(f"embeddings {model}", kind, attributes) as span:
        yield span


@contextmanager
def retrieval_span(tracing: Tracing, collection: str, top_k: int, query: str) -> Iterator[Span]:
    """``retrieval {collection}`` (CLIENT) around embedding the query and searching Qdrant.

    On success call :func:`record_retrieval`. With content capture on, the query goes in
    ``gen_ai.retrieval.query.text`` (redacted).
    """
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.data_source.id": collection,
        "gen_ai.retrieval.top_k": top_k,
        "db.system.name": "qdrant",
        "db.collection.name": collection,
        "db.operation.name": "query_points",
    }
    with tracing.operation(f"retrieval {collection}", SpanKind.CLIENT, attributes) as span:
        if tracing.capture_content and span.is_recording():
            span.set_attribute("gen_ai.retrieval.query.text", redact(query))
        yield span


def record_retrieval(tracing: Tracing, span: Span, documents: Sequence[RetrievedDocument]) -> None:
    """How many passages came back; their ids and scores too with content capture on."""
    if not span.is_recording():
        return
    span.set_attribute("db.response.returned_rows", len(documents))
    if tracing.capture_content:
        span.set_attribute("gen_ai.retrieval.documents", build_documents(documents))
