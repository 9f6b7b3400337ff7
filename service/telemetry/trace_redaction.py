"""Every span attribute, event, link, name and status redacted before it is recorded.

::

    instrumentors, our span helpers
        └── RedactingTracerProvider.get_tracer() ── RedactingTracer.start_span()
                └── RedactingSpan: set_attribute / add_event / record_exception /
                    set_status / update_name / add_link  ── redacted ──> SDK span

OpenTelemetry's FastAPI and httpx instrumentations record the request's URL, path,
query string, user agent and peer (``http.url``, ``url.full``, ``url.query``,
``http.target``, ``user_agent.original``…), and exceptions record their message and
stack trace: all of it may carry personal data. Wrapping the provider the
instrumentations are given redacts all of it centrally, whatever sets it: the SDK span
only ever holds redacted values, so every processor and exporter sees them. Attribute
keys are redacted too, and a JSON-valued string (``gen_ai.input.messages``) is redacted
value by value so that it stays valid JSON.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util._decorator import _agnosticcontextmanager
from opentelemetry.util.types import AnyValue, Attributes

from prompting.redaction import redact, redact_key, redact_value

__all__ = [
    "RedactingSpan",
    "RedactingTracer",
    "RedactingTracerProvider",
    "redact_attribute_value",
    "redact_attributes",
]


def _redact_string(text: str) -> str:
    stripped = text.lstrip()
    if stripped[:1] in ("[", "{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return redact(text)
        if isinstance(parsed, list | dict):
            return json.dumps(redact_value(parsed), ensure_ascii=False)
    return redact(text)


def redact_attribute_value(value: AnyValue) -> AnyValue:
    """`value` with every string in it redacted; its shape (and JSON-ness) kept (pure)."""
    if isinstance(value, str):
        return _redact_string(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {redact_key(str(k)): redact_attribute_value(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [redact_attribute_value(item) for item in value]
    return redact(str(value))


def redact_attributes(attributes: Attributes) -> Attributes:
    """`attributes` with keys and values redacted; keys that redact alike kept apart (pure)."""
    if not attributes:
        return attributes
    redacted: dict[str, AnyValue] = {}
    for key, value in attributes.items():
        name = redact_key(key)
        if name in redacted:
            suffix = 2
            while f"{name}#{suffix}" in redacted:
                suffix += 1
            name = f"{name}#{suffix}"
        redacted[name] = redact_attribute_value(value)
    return redacted


def _redact_links(links: Sequence[Link] | None) -> list[Link] | None:
    if links is None:
        return None
    return [Link(link.context, redact_attributes(link.attributes)) for link in links]


class RedactingSpan(Span):
    """A span that redacts whatever is recorded on it, then hands it to the real span."""

    def __init__(self, span: Span) -> None:
        self._span = span

    @property
    def wrapped(self) -> Span:
        """The SDK span underneath."""
        return self._span

    def __getattr__(self, name: str) -> Any:
        # SDK-only attributes some instrumentations read (``kind``, ``name``…).
        return getattr(self._span, name)

    def end(self, end_time: int | None = None) -> None:
        """End the span."""
        self._span.end(end_time)

    def get_span_context(self) -> SpanContext:
        """The wrapped span's context."""
        return self._span.get_span_context()

    def is_recording(self) -> bool:
        """Whether the wrapped span records."""
        return self._span.is_recording()

    def set_attributes(self, attributes: Mapping[str, AnyValue]) -> None:
        """Set `attributes`, redacted."""
        redacted = redact_attributes(attributes)
        if redacted:
            self._span.set_attributes(redacted)

    def set_attribute(self, key: str, value: AnyValue) -> None:
        """Set one attribute, key and value redacted."""
        self._span.set_attribute(redact_key(key), redact_attribute_value(value))

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        """Add an event, its name and attributes redacted."""
        self._span.add_event(redact_key(name), redact_attributes(attributes), timestamp)

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        """Add a link, its attributes redacted."""
        self._span.add_link(context, redact_attributes(attributes))

    def update_name(self, name: str) -> None:
        """Rename the span, the name redacted."""
        self._span.update_name(redact(name))

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """Set the status, its description redacted."""
        if isinstance(status, Status):
            if status.description:
                status = Status(status.status_code, redact(status.description))
            self._span.set_status(status)
            return
        self._span.set_status(status, None if description is None else redact(description))

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """An ``exception`` event as the SDK records it, message and stack trace redacted."""
        kind = type(exception)
        module, qualname = kind.__module__, kind.__qualname__
        name = f"{module}.{qualname}" if module and module != "builtins" else qualname
        recorded: dict[str, AnyValue] = {
            "exception.type": name,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        recorded.update(attributes or {})
        self.add_event("exception", recorded, timestamp)


class RedactingTracer(trace.Tracer):
    """Starts spans of the wrapped tracer as `RedactingSpan`, name and attributes redacted."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        """Start a span (not made current)."""
        span = self._tracer.start_span(
            redact(name),
            context,
            kind,
            redact_attributes(attributes),
            _redact_links(links),
            start_time,
            record_exception,
            set_status_on_exception,
        )
        return RedactingSpan(span)

    # The API's own decorator (its ProxyTracer uses it too): usable as `with` or on async defs.
    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        """Start a span and make it current for the block (the SDK's own recipe)."""
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception,
            set_status_on_exception,
        )  # fmt: skip
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class RedactingTracerProvider(trace.TracerProvider):
    """Hands out `RedactingTracer` over the wrapped provider's tracers."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self._provider = provider

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        """A redacting tracer for the named instrumentation scope."""
        return RedactingTracer(
            self._provider.get_tracer(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )
        )
