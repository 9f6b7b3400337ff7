"""Traces of every answer, in OpenTelemetry's GenAI semantic conventions.

::

    POST /v1/answers                      server span (FastAPI instrumentation)
    └── answer policy-qa                  answer_span: prompt, version, outcome
        ├── retrieval policies            retrieval_span: collection, top_k, rows returned
        │   └── embeddings <model>        embedding_span: one per embed() call
        │       └── POST                  client span (httpx), remote embedders only
        └── chat gpt-4o-mini              chat_span: one per upstream attempt
            └── POST                      client span (httpx)

:func:`configure_tracing` decides from the standard ``OTEL_*`` variables
(:func:`decide_exporters`, pure). When none asks for traces it returns None and builds
nothing: no provider, no exporter thread, and every span helper here is a no-op.
It never sets OpenTelemetry's process-wide provider (which can be set only once): the
provider goes to the instrumentors and to :func:`tracer` explicitly, so apps created one
after another (tests, reloads) each get their own.

Message content (prompts, answers, retrieval queries) is recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``, and only after
:func:`service.redaction.redact`. Beyond that, the instrumentations and our own helpers
all trace through a :class:`service.trace_redaction.RedactingTracerProvider`: every
span name, attribute (key and value: ``http.url``, ``url.query``, ``user_agent.original``
…), event, link and status description is redacted before the SDK records it.

The console exporter writes one JSON object per line on stdout, like the logs, through
the logs' writer (so span and log lines never interleave).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Protocol, cast

import httpx
from opentelemetry import trace
from opentelemetry.trace import NoOpTracer, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from service.errors import ServiceError, UpstreamError
from service.logs import write_line
from service.outcome import outcome_of_error
from service.redaction import redact
from service.trace_redaction import RedactingTracerProvider

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from service.chat import ChatRequest, ChatResponse
    from service.rendering import Message

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "ONNX_PROVIDER",
    "OPENAI_PROVIDER",
    "RetrievedDocument",
    "TracingHandle",
    "answer_span",
    "build_chat_attributes",
    "build_chat_response_attributes",
    "build_console_line",
    "build_error_type",
    "build_input_messages",
    "build_output_messages",
    "build_server_attributes",
    "capture_content_enabled",
    "chat_span",
    "configure_tracing",
    "decide_capture_content",
    "decide_exporters",
    "embedding_span",
    "install_provider",
    "record_answer",
    "record_chat_response",
    "record_retrieval",
    "retrieval_span",
    "tracer",
]

_log = logging.getLogger(__name__)

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
#: ``gen_ai.provider.name`` of OpenAI-compatible endpoints.
OPENAI_PROVIDER = "openai"
#: ``gen_ai.provider.name`` of the bundled in-process model (not a well-known value).
ONNX_PROVIDER = "onnxruntime"
DEFAULT_SERVICE_NAME = "prompt-rollouts"
_SCOPE = "prompt-rollouts"
_EXPORTERS = ("otlp", "console")
#: Server spans left out unless OTEL_PYTHON_(FASTAPI_)EXCLUDED_URLS says otherwise.
_EXCLUDED_URLS = "/healthz,/readyz,/metrics"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NOOP_TRACER = NoOpTracer()


class RetrievedDocument(Protocol):
    """What a retrieval span records of each result (a :class:`service.retrieval.Passage`)."""

    @property
    def passage_id(self) -> str:
        """The passage's id."""
        ...

    @property
    def score(self) -> float:
        """Its similarity to the query."""
        ...


# --- Decisions (pure) -----------------------------------------------------------------


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


def decide_exporters(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The span exporters the environment asks for; empty means tracing is off (pure).

    ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turn tracing off; otherwise
    ``OTEL_TRACES_EXPORTER`` names the exporters, and when it is unset an OTLP endpoint
    (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``) selects OTLP.
    Nothing set: off (the SDK's own default would export to localhost).
    """
    if _is_true(environ.get("OTEL_SDK_DISABLED")):
        return ()
    raw = environ.get("OTEL_TRACES_EXPORTER", "")
    names = tuple(dict.fromkeys(n.strip().lower() for n in raw.split(",") if n.strip()))
    if names:
        return () if "none" in names else names
    endpoints = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
    )
    return ("otlp",) if any(e.strip() for e in endpoints) else ()


def decide_capture_content(environ: Mapping[str, str]) -> bool:
    """Whether message content goes on spans (redacted): opt-in, off by default (pure)."""
    return _is_true(environ.get(CAPTURE_CONTENT_ENV))


# --- Attributes (pure) ----------------------------------------------------------------


def build_server_attributes(url: str | None) -> dict[str, AttributeValue]:
    """``server.address`` and ``server.port`` of a base URL, the port implied by the scheme."""
    if not url:
        return {}
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return {}
    if not parsed.host:
        return {}
    attributes: dict[str, AttributeValue] = {"server.address": parsed.host}
    port = parsed.port or _DEFAULT_PORTS.get(parsed.scheme)
    if port is not None:
        attributes["server.port"] = port
    return attributes


def build_chat_attributes(
    *,
    provider: str,
    model: str,
    temperature: float | None,
    max_tokens: int | None,
    server_url: str | None,
) -> dict[str, AttributeValue]:
    """The attributes a ``chat {model}`` span starts with (pure)."""
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    if temperature is not None:
        attributes["gen_ai.request.temperature"] = float(temperature)
    if max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = max_tokens
    return attributes | build_server_attributes(server_url)


def _finish_reasons(payload: object) -> list[str]:
    choices = payload.get("choices") if isinstance(payload, Mapping) else None
    if not isinstance(choices, list):
        return []
    return [
        str(choice["finish_reason"])
        for choice in choices
        if isinstance(choice, Mapping) and choice.get("finish_reason")
    ]


def build_chat_response_attributes(payload: object) -> dict[str, AttributeValue]:
    """``gen_ai.response.{id,model,finish_reasons}`` of an OpenAI chat completion body;
    whatever is missing or malformed is left out (pure)."""
    if not isinstance(payload, Mapping):
        return {}
    attributes: dict[str, AttributeValue] = {}
    if isinstance(response_id := payload.get("id"), str):
        attributes["gen_ai.response.id"] = response_id
    if isinstance(model := payload.get("model"), str):
        attributes["gen_ai.response.model"] = model
    if reasons := _finish_reasons(payload):
        attributes["gen_ai.response.finish_reasons"] = reasons
    return attributes


def build_error_type(error: BaseException) -> str:
    """``error.type``: the upstream status or failure kind, else the exception's class name."""
    if isinstance(error, UpstreamError):
        if error.kind == "status" and error.status is not None:
            return str(error.status)
        return error.kind
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return type(error).__qualname__


def _text_parts(text: str) -> list[dict[str, str]]:
    return [{"type": "text", "content": redact(text)}]


def build_input_messages(messages: Sequence[Message]) -> str:
    """``gen_ai.input.messages`` as a JSON string, every text redacted."""
    return json.dumps(
        [{"role": m.role, "parts": _text_parts(m.content)} for m in messages], ensure_ascii=False
    )


def build_output_messages(text: str, finish_reason: str | None) -> str:
    """``gen_ai.output.messages`` of one choice as a JSON string, the text redacted."""
    message = {"role": "assistant", "parts": _text_parts(text), "finish_reason": finish_reason}
    return json.dumps([message], ensure_ascii=False)


def _build_documents(documents: Sequence[RetrievedDocument]) -> str:
    return json.dumps([{"id": d.passage_id, "score": round(d.score, 4)} for d in documents])


# --- The active provider ----------------------------------------------------------------


@dataclass
class TracingHandle:
    """Tracing configured for one app; :meth:`shutdown` flushes and undoes it."""

    provider: TracerProvider
    capture_content: bool
    app: FastAPI
    http: httpx.AsyncClient | None
    owns_provider: bool
    tracer: Tracer = field(init=False)
    closed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.tracer = RedactingTracerProvider(self.provider).get_tracer(_SCOPE)

    def shutdown(self, timeout_millis: int = 5_000) -> None:
        """Uninstrument, export the spans still queued and stop the exporter (idempotent)."""
        global _active  # noqa: PLW0603 - the one module state, see tracer()
        if self.closed:
            return
        self.closed = True
        if _active is self:
            _active = None
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor  # noqa: PLC0415

        FastAPIInstrumentor.uninstrument_app(self.app)
        if self.http is not None:
            HTTPXClientInstrumentor.uninstrument_client(self.http)
        self.provider.force_flush(timeout_millis)
        if self.owns_provider:
            self.provider.shutdown()


_active: TracingHandle | None = None
_injected: TracerProvider | None = None


def install_provider(provider: TracerProvider | None) -> None:
    """Make :func:`configure_tracing` use `provider` whatever the environment (tests).

    The caller keeps owning it (a handle never shuts it down); None restores the
    environment's choice.
    """
    global _injected  # noqa: PLW0603 - a test hook, set and cleared by fixtures
    _injected = provider


def tracer() -> Tracer:
    """The tracer of the app configured last; a no-op tracer while tracing is off."""
    active = _active
    return active.tracer if active is not None else _NOOP_TRACER


def capture_content_enabled() -> bool:
    """Whether spans record (redacted) message content now."""
    active = _active
    return active is not None and active.capture_content


def configure_tracing(app: FastAPI, http: httpx.AsyncClient | None = None) -> TracingHandle | None:
    """Trace `app` and the shared `http` client as the ``OTEL_*`` variables say; None when off.

    Call it in the lifespan, once the client exists; call the handle's ``shutdown()`` on
    the way out. The exporter sends OTLP http/protobuf, configured by the SDK's own
    variables (endpoint, headers, timeout, ``OTEL_BSP_*``, ``OTEL_TRACES_SAMPLER``, ...).
    """
    global _active  # noqa: PLW0603 - the one module state, see tracer()
    provider, owned = _injected, False
    if provider is None:
        provider, owned = _build_provider(decide_exporters(os.environ), app.version), True
    if provider is None:
        return None
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor  # noqa: PLC0415

    from_env = {"OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS"} & set(os.environ)
    redacting = RedactingTracerProvider(provider)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=redacting,
        excluded_urls=None if from_env else _EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
    )
    # The lifespan runs inside the middleware stack built on the first ASGI call: rebuild
    # it with the OpenTelemetry middleware in (uninstrument_app rebuilds it the same way).
    app.middleware_stack = app.build_middleware_stack()
    if http is not None:
        HTTPXClientInstrumentor.instrument_client(http, tracer_provider=redacting)
    handle = TracingHandle(provider, decide_capture_content(os.environ), app, http, owned)
    _active = handle
    return handle


def _build_provider(exporters: Sequence[str], version: str) -> TracerProvider | None:
    """A provider batching spans to each known exporter; None when there is none."""
    if not exporters:
        return None
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        ConsoleSpanExporter,
    )

    built: list[SpanExporter] = []
    for name in exporters:
        if name == "otlp":
            built.append(_build_otlp_exporter())
        elif name == "console":
            out = cast("IO[str]", _LineWriter())
            built.append(ConsoleSpanExporter(out=out, formatter=build_console_line))
        else:
            _log.warning(
                "OTEL_TRACES_EXPORTER: %r is not supported (%s)", name, ", ".join(_EXPORTERS)
            )
    if not built:
        return None
    provider = TracerProvider(resource=_build_resource(version))
    for exporter in built:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def build_console_line(span: ReadableSpan) -> str:
    """One span as one line of compact JSON (the console exporter's format)."""
    return json.dumps(json.loads(span.to_json(indent=None)), separators=(",", ":")) + "\n"


class _LineWriter(io.TextIOBase):
    """The console exporter's output: each line through the logs' writer."""

    def write(self, text: str) -> int:
        for line in text.splitlines():
            write_line(line)
        return len(text)

    def flush(self) -> None:
        """Lines are flushed as they are written."""


def _build_otlp_exporter() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol.strip() not in ("", "http/protobuf"):
        _log.warning("OTLP protocol %r is not supported: exporting with http/protobuf", protocol)
    return OTLPSpanExporter()


def _build_resource(version: str) -> Resource:
    """The SDK's resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), with our defaults."""
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource  # noqa: PLC0415

    detected = Resource.create()
    defaults: dict[str, AttributeValue] = {}
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        defaults[SERVICE_NAME] = DEFAULT_SERVICE_NAME
    if SERVICE_VERSION not in detected.attributes:
        defaults[SERVICE_VERSION] = version
    return detected.merge(Resource(defaults))


# --- Spans ----------------------------------------------------------------------------


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
def _operation(
    name: str, kind: SpanKind, attributes: Mapping[str, AttributeValue]
) -> Iterator[Span]:
    if _active is None:
        yield trace.INVALID_SPAN
        return
    with tracer().start_as_current_span(
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


@contextmanager
def chat_span(
    request: ChatRequest, *, provider: str, server_url: str | None = None
) -> Iterator[Span]:
    """``chat {model}`` (CLIENT) around one upstream attempt; ``error.type`` if it fails.

    On success call :func:`record_chat_response`. With content capture on, the request's
    messages go in ``gen_ai.input.messages`` (redacted).
    """
    attributes = build_chat_attributes(
        provider=provider,
        model=request.model,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        server_url=server_url,
    )
    with _operation(f"chat {request.model}", SpanKind.CLIENT, attributes) as span:
        if capture_content_enabled() and span.is_recording():
            span.set_attribute("gen_ai.input.messages", build_input_messages(request.messages))
        yield span


def record_chat_response(
    span: Span, reply: ChatResponse, response: httpx.Response | None = None
) -> None:
    """Usage tokens (as billed), and the response's id, model and finish reasons."""
    if not span.is_recording():
        return
    payload: object = None
    if response is not None:
        try:
            payload = response.json()
        except ValueError:
            payload = None
    span.set_attributes(
        {
            "gen_ai.usage.input_tokens": reply.input_tokens,
            "gen_ai.usage.output_tokens": reply.output_tokens,
            **build_chat_response_attributes(payload),
        }
    )
    if capture_content_enabled():
        reasons = _finish_reasons(payload)
        output = build_output_messages(reply.text, reasons[0] if reasons else "stop")
        span.set_attribute("gen_ai.output.messages", output)


@contextmanager
def embedding_span(
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
    with _operation(f"embeddings {model}", kind, attributes) as span:
        yield span


@contextmanager
def retrieval_span(collection: str, top_k: int, query: str) -> Iterator[Span]:
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
    with _operation(f"retrieval {collection}", SpanKind.CLIENT, attributes) as span:
        if capture_content_enabled() and span.is_recording():
            span.set_attribute("gen_ai.retrieval.query.text", redact(query))
        yield span


def record_retrieval(span: Span, documents: Sequence[RetrievedDocument]) -> None:
    """How many passages came back; their ids and scores too with content capture on."""
    if not span.is_recording():
        return
    span.set_attribute("db.response.returned_rows", len(documents))
    if capture_content_enabled():
        span.set_attribute("gen_ai.retrieval.documents", _build_documents(documents))


@contextmanager
def answer_span() -> Iterator[Span]:
    """``answer`` (INTERNAL) around the whole pipeline of one answer.

    :func:`record_answer` names it ``answer {prompt}`` once a version is chosen (so names
    stay bounded by the manifests) and sets the outcome; a ServiceError sets it here.
    """
    with _operation("answer", SpanKind.INTERNAL, {}) as span:
        try:
            yield span
        except ServiceError as error:
            span.set_attribute("prompt_rollouts.outcome", str(outcome_of_error(error)))
            raise


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
