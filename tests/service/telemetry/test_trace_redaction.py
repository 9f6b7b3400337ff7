"""Spans redacted before the SDK records them, and the console exporter's JSON lines."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from service.telemetry import tracing
from service.telemetry.trace_redaction import RedactingTracerProvider, redact_attribute_value

EMAIL = "jane.doe@example.com"


@pytest.fixture
def spans() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield RedactingTracerProvider(provider).get_tracer("test"), exporter
    provider.shutdown()


def test_everything_recorded_on_a_span_is_redacted(
    spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    with tracer.start_as_current_span(
        f"GET /v1/{EMAIL}", attributes={"url.query": "email=jane.doe%40example.com"}
    ) as span:
        span.set_attribute("http.url", f"http://h/v1/x?e={EMAIL}")
        span.set_attribute(EMAIL, "key too")
        span.set_attributes({"user_agent.original": f"bot {EMAIL}", "n": 3, "ok": True})
        span.set_attribute("list", [EMAIL, "plain"])
        span.add_event(f"saw {EMAIL}", {"who": EMAIL})
        span.update_name(f"renamed {EMAIL}")
        span.set_status(Status(StatusCode.ERROR, f"failed for {EMAIL}"))
        # Current span is the redacting one: code that reaches for it is covered too.
        trace.get_current_span().set_attribute("late", EMAIL)

    (finished,) = exporter.get_finished_spans()
    assert finished.name == "renamed [EMAIL]"
    assert finished.status.description == "failed for [EMAIL]"
    assert dict(finished.attributes or {}) == {
        "url.query": "email=[EMAIL]",
        "http.url": "http://h/v1/x?e=[EMAIL]",
        "[EMAIL]": "key too",
        "user_agent.original": "bot [EMAIL]",
        "n": 3,
        "ok": True,
        "list": ("[EMAIL]", "plain"),
        "late": "[EMAIL]",
    }
    (event,) = finished.events
    assert (event.name, dict(event.attributes or {})) == ("saw [EMAIL]", {"who": "[EMAIL]"})
    assert EMAIL not in finished.to_json()


def test_exceptions_are_recorded_redacted(
    spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    with pytest.raises(ValueError, match="jane"), tracer.start_as_current_span("work"):
        raise ValueError(f"no account for {EMAIL}")

    (finished,) = exporter.get_finished_spans()
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.status.description == "ValueError: no account for [EMAIL]"
    (event,) = finished.events
    attributes = dict(event.attributes or {})
    assert event.name == "exception"
    assert attributes["exception.type"] == "ValueError"
    assert attributes["exception.message"] == "no account for [EMAIL]"
    assert "no account for [EMAIL]" in str(attributes["exception.stacktrace"])
    assert EMAIL not in finished.to_json()


def test_child_spans_keep_their_parent(spans: tuple[trace.Tracer, InMemorySpanExporter]) -> None:
    tracer, exporter = spans
    with tracer.start_as_current_span("parent") as parent, tracer.start_as_current_span("child"):
        pass
    child, outer = exporter.get_finished_spans()
    assert child.parent is not None
    assert child.parent.span_id == parent.get_span_context().span_id == outer.context.span_id


def test_json_attributes_stay_json() -> None:
    value = json.dumps([{"role": "user", "parts": [{"content": f"I am {EMAIL}\n\u0007"}]}])

    redacted = redact_attribute_value(value)

    assert isinstance(redacted, str)
    assert json.loads(redacted) == [{"role": "user", "parts": [{"content": "I am [EMAIL]\n"}]}]


def test_console_exporter_writes_one_json_object_per_line(
    spans: tuple[trace.Tracer, InMemorySpanExporter], capsys: pytest.CaptureFixture[str]
) -> None:
    tracer, exporter = spans
    with tracer.start_as_current_span("one", attributes={"a": "x\ny"}):
        pass
    with tracer.start_as_current_span("two"):
        pass
    out = io.StringIO()
    console = ConsoleSpanExporter(out=out, formatter=tracing.build_console_line)
    console.export(exporter.get_finished_spans())

    lines = out.getvalue().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["one", "two"]
    assert json.loads(lines[0])["attributes"] == {"a": "x\ny"}


def test_console_exporter_from_the_environment_writes_json_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    provider = tracing._build_provider(
        tracing.decide_exporters({"OTEL_TRACES_EXPORTER": "console"}), "1.2.0"
    )
    assert provider is not None
    tracer = RedactingTracerProvider(provider).get_tracer("test")
    with tracer.start_as_current_span(f"hello {EMAIL}"):
        pass
    provider.shutdown()

    (line,) = capsys.readouterr().out.splitlines()
    span = json.loads(line)
    assert span["name"] == "hello [EMAIL]"
    assert span["resource"]["attributes"]["service.version"] == "1.2.0"
