"""Span helpers record through the Tracing they are given: per app, never module state."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from service.answering.result import answer_span, record_answer
from service.errors import UpstreamUnavailableError
from service.telemetry.spans import Tracing, retrieval_span


def _switched_on(capture_content: bool = False) -> tuple[Tracing, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing = Tracing()
    tracing.switch_on(provider.get_tracer("test"), capture_content=capture_content)
    return tracing, memory


def test_a_tracing_that_is_off_records_nothing() -> None:
    tracing = Tracing()
    with retrieval_span(tracing, "policies", 3, "question") as span:
        assert span is trace.INVALID_SPAN
    assert not tracing.enabled and not tracing.capture_content


def test_two_apps_trace_independently() -> None:
    first, first_spans = _switched_on()
    second, second_spans = _switched_on(capture_content=True)
    with retrieval_span(first, "policies", 3, "my question"):
        pass
    with retrieval_span(second, "faq", 1, "my question"):
        pass
    assert [s.name for s in first_spans.get_finished_spans()] == ["retrieval policies"]
    (faq,) = second_spans.get_finished_spans()
    assert faq.name == "retrieval faq"
    assert faq.attributes is not None and "gen_ai.retrieval.query.text" in faq.attributes
    first.switch_off()
    with retrieval_span(first, "policies", 3, "q") as span:
        assert span is trace.INVALID_SPAN
    assert len(first_spans.get_finished_spans()) == 1


def test_the_answer_span_records_an_escaping_error_and_the_recorded_outcome() -> None:
    tracing, memory = _switched_on()

    def fail() -> None:
        with answer_span(tracing) as span:
            record_answer(span, prompt="qa", version="1.0.0", outcome="unavailable")
            raise UpstreamUnavailableError("every model failed", retry_after=1.0)

    with pytest.raises(UpstreamUnavailableError):
        fail()
    (answer,) = memory.get_finished_spans()
    assert answer.name == "answer qa"
    assert answer.status.status_code is StatusCode.ERROR
    assert answer.attributes is not None
    assert answer.attributes["prompt_rollouts.outcome"] == "unavailable"
    assert answer.attributes["error.type"] == "UpstreamUnavailableError"
