"""Tracing setup: which exporters, the provider, the instrumentations (OpenTelemetry).

:func:`configure_tracing` decides from the standard ``OTEL_*`` variables
(:func:`decide_exporters`, pure). When none asks for traces it returns None and builds
nothing: no provider, no exporter thread, and the app's :class:`service.telemetry.spans.Tracing`
stays off, so every span helper is a no-op. Otherwise it instruments the app and the
shared httpx client and switches the app's ``Tracing`` on; the handle's ``shutdown()``
switches it off again. It never sets OpenTelemetry's process-wide provider (which can be
set only once), and keeps no module state of its own: apps created one after another
(tests, reloads) each trace through their own ``Tracing``, and a provider chosen by the
caller (``create_app(tracer_provider=...)``) is passed in, never installed globally. The
span helpers live in :mod:`service.telemetry.spans` (chat, embeddings, retrieval) and
:mod:`service.answering.result` (the answer span).

Message content (prompts, answers, retrieval queries) is recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``, and only after
:func:`prompting.redaction.redact`. Beyond that, the instrumentations and our own helpers
all trace through a :class:`service.telemetry.trace_redaction.RedactingTracerProvider`: every
span name, attribute (key and value: ``http.url``, ``url.query``, ``user_agent.original``
…), event, link and status description is redacted before the SDK records it.

The console exporter writes one JSON object per line on stdout, like the logs, through
the logs' writer (so span and log lines never interleave).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, cast

import httpx
from opentelemetry.trace import Tracer
from opentelemetry.util.types import AttributeValue

from service.telemetry.logs import write_line
from service.telemetry.spans import Tracing
from service.telemetry.trace_redaction import RedactingTracerProvider

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "TracingHandle",
    "build_console_line",
    "configure_tracing",
    "decide_capture_content",
    "decide_exporters",
]

_log = logging.getLogger(__name__)

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
DEFAULT_SERVICE_NAME = "prompt-rollouts"
_SCOPE = "prompt-rollouts"
_EXPORTERS = ("otlp", "console")
#: Server spans left out unless OTEL_PYTHON_(FASTAPI_)EXCLUDED_URLS says otherwise.
_EXCLUDED_URLS = "/healthz,/readyz,/metrics"


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


# --- Setup ----------------------------------------------------------------------------


@dataclass
class TracingHandle:
    """Tracing configured for one app; :meth:`shutdown` flushes and undoes it."""

    provider: TracerProvider
    capture_content: bool
    app: FastAPI
    http: httpx.AsyncClient | None
    owns_provider: bool
    #: The app's Tracing, switched on while the handle is open.
    tracing: Tracing
    tracer: Tracer = field(init=False)
    closed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.tracer = RedactingTracerProvider(self.provider).get_tracer(_SCOPE)
        self.tracing.switch_on(self.tracer, capture_content=self.capture_content)

    def shutdown(self, timeout_millis: int = 5_000) -> None:
        """Uninstrument, export the spans still queued and stop the exporter (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.tracing.switch_off()
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor  # noqa: PLC0415

        FastAPIInstrumentor.uninstrument_app(self.app)
        if self.http is not None:
            HTTPXClientInstrumentor.uninstrument_client(self.http)
        self.provider.force_flush(timeout_millis)
        if self.owns_provider:
            self.provider.shutdown()


def configure_tracing(
    app: FastAPI,
    http: httpx.AsyncClient | None = None,
    tracing: Tracing | None = None,
    provider: TracerProvider | None = None,
) -> TracingHandle | None:
    """Trace `app` and the shared `http` client as the ``OTEL_*`` variables say, and switch
    `tracing` (the app's, shared by its components) on; None when tracing is off.

    A `provider` given by the caller (the app factory's ``tracer_provider``, e.g. a test's
    in-memory one) is used whatever the environment says, and stays the caller's: the
    handle never shuts it down.

    Call it in the lifespan, once the client exists; call the handle's ``shutdown()`` on
    the way out. The exporter sends OTLP http/protobuf, configured by the SDK's own
    variables (endpoint, headers, timeout, ``OTEL_BSP_*``, ``OTEL_TRACES_SAMPLER``, ...).
    """
    owned = False
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
    capture = decide_capture_content(os.environ)
    return TracingHandle(provider, capture, app, http, owned, tracing or Tracing())


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
