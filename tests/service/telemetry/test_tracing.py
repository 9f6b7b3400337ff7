"""Tracing: the pure decisions as tables, then whole answers through the app's lifespan.

Spans are collected by an in-memory exporter on a provider of the test's own, handed to
the app through ``create_app(tracer_provider=...)`` (OpenTelemetry's global provider is
never touched).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from fakemodel.app import FakeModelState, create_fake_model_app
from service.app import create_app
from service.errors import UpstreamError, UpstreamUnavailableError
from service.retrieval.embeddings import MINILM_MODEL_ID
from service.telemetry import span_attributes, tracing
from tests.service.http.routers.conftest import build_settings
from tests.support.servers import serve_in_thread

QUESTION = "Can I refund a digital item after two weeks?"
EMAIL = "jane.doe@example.com"
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.retrieval.query.text")


# --- Pure decisions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ()),
        ({"OTEL_SERVICE_NAME": "answers"}, ()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, ()),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "OTLP, console,otlp"}, ("otlp", "console")),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, ()),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, ("zipkin",)),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, ()),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, ("otlp",)),
    ],
    ids=[
        "nothing-set",
        "service-name-alone",
        "endpoint",
        "traces-endpoint",
        "blank-endpoint",
        "exporter-otlp",
        "exporter-list-deduplicated",
        "exporter-none-wins",
        "unknown-exporter-kept-for-a-warning",
        "sdk-disabled",
        "sdk-not-disabled",
    ],
)
def test_decide_exporters(environ: dict[str, str], expected: tuple[str, ...]) -> None:
    assert tracing.decide_exporters(environ) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("true", True), ("TRUE ", True), ("false", False), ("1", False)],
    ids=["unset", "true", "true-any-case", "false", "one-is-not-true"],
)
def test_decide_capture_content(value: str | None, expected: bool) -> None:
    environ = {} if value is None else {tracing.CAPTURE_CONTENT_ENV: value}
    assert tracing.decide_capture_content(environ) is expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080/v1", {"server.address": "127.0.0.1", "server.port": 8080}),
        ("https://api.openai.com/v1", {"server.address": "api.openai.com", "server.port": 443}),
        ("http://model/v1", {"server.address": "model", "server.port": 80}),
        (None, {}),
        ("", {}),
        ("/relative/path", {}),
    ],
    ids=["explicit-port", "https-default", "http-default", "none", "empty", "no-host"],
)
def test_build_server_attributes(url: str | None, expected: dict[str, Any]) -> None:
    assert span_attributes.build_server_attributes(url) == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "temperature": 0.2,
                "max_tokens": 400,
                "server_url": "http://127.0.0.1:9000/v1",
            },
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.request.temperature": 0.2,
                "gen_ai.request.max_tokens": 400,
                "server.address": "127.0.0.1",
                "server.port": 9000,
            },
        ),
        (
            {
                "provider": "openai",
                "model": "m",
                "temperature": 0,
                "max_tokens": None,
                "server_url": None,
            },
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "m",
                "gen_ai.request.temperature": 0.0,
            },
        ),
        (
            {
                "provider": "openai",
                "model": "m",
                "temperature": None,
                "max_tokens": 1,
                "server_url": None,
            },
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "m",
                "gen_ai.request.max_tokens": 1,
            },
        ),
    ],
    ids=["everything", "zero-temperature-no-server", "no-temperature"],
)
def test_build_chat_attributes(kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    attributes = span_attributes.build_chat_attributes(**kwargs)
    assert attributes == expected
    assert all(type(attributes[k]) is type(v) for k, v in expected.items())


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {
                "id": "chatcmpl-1",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"finish_reason": "stop"}, {"finish_reason": "length"}],
            },
            {
                "gen_ai.response.id": "chatcmpl-1",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.response.finish_reasons": ["stop", "length"],
            },
        ),
        ({"choices": [{"finish_reason": None}, "junk"]}, {}),
        ({"id": 7, "model": None, "choices": "none"}, {}),
        (None, {}),
        ([1, 2], {}),
    ],
    ids=["complete", "no-finish-reason", "wrong-types", "no-body", "not-an-object"],
)
def test_build_chat_response_attributes(payload: object, expected: dict[str, Any]) -> None:
    assert span_attributes.build_chat_response_attributes(payload) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (UpstreamError("m: 503", kind="status", status=503), "503"),
        (UpstreamError("m: 429", kind="status", status=429), "429"),
        (UpstreamError("m: timed out", kind="timeout"), "timeout"),
        (UpstreamError("m: reset", kind="reset"), "reset"),
        (UpstreamUnavailableError("no model answered", 1.0), "UpstreamUnavailableError"),
        (asyncio.CancelledError(), "cancelled"),
        (TimeoutError(), "TimeoutError"),
    ],
    ids=["status-503", "status-429", "timeout", "reset", "service-error", "cancelled", "builtin"],
)
def test_build_error_type(error: BaseException, expected: str) -> None:
    assert span_attributes.build_error_type(error) == expected


# --- Through the app ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the shell says, tests start with no OTEL_* variable."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Spans of the apps started in the test (through :func:`provider`)."""
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A provider the test owns, handed to ``create_app(tracer_provider=...)``."""
    owned = TracerProvider()
    owned.add_span_processor(SimpleSpanProcessor(exporter))
    yield owned
    owned.shutdown()


@pytest.fixture(scope="module")
def fake_model() -> Iterator[tuple[str, FakeModelState]]:
    state = FakeModelState()
    with serve_in_thread(create_fake_model_app(state)) as url:
        yield url, state


def _model_app(url: str, provider: TracerProvider | None, **overrides: Any) -> FastAPI:
    settings = build_settings(model_base_url=f"{url}/v1", **overrides)
    return create_app(settings, tracer_provider=provider)


def _ask(client: TestClient, question: str = QUESTION) -> Any:
    body = {"prompt": "policy-qa", "version": "1.1.0", "question": question}
    return client.post("/v1/answers", json=body)


def _named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    (span,) = _named(spans, name)
    return span


def _parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _everything_recorded(spans: Sequence[ReadableSpan]) -> str:
    """Every attribute and event attribute of every span, as one string."""
    parts: list[str] = []
    for span in spans:
        parts.append(span.name)
        parts.extend(f"{k}={v!s}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            parts.extend(f"{k}={v!s}" for k, v in (event.attributes or {}).items())
    return "\n".join(parts)


@pytest.mark.integration
def test_one_answer_is_one_trace_with_genai_attributes(
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
    fake_model: tuple[str, FakeModelState],
) -> None:
    url, _ = fake_model
    with TestClient(_model_app(url, provider)) as client:
        exporter.clear()  # start-up indexing is not traced, but be sure
        response = _ask(client)
    assert response.status_code == 200
    body = response.json()
    spans = exporter.get_finished_spans()

    server = _one(spans, "POST /v1/answers")
    answer = _one(spans, "answer policy-qa")
    retrieval = _one(spans, "retrieval policies")
    embedding = _one(spans, f"embeddings {MINILM_MODEL_ID}")
    chat = _one(spans, "chat gpt-4o-mini")
    (upstream,) = [s for s in spans if s.kind is SpanKind.CLIENT and s.name == "POST"]

    assert {s.context.trace_id for s in spans} == {server.context.trace_id}
    assert server.parent is None and server.kind is SpanKind.SERVER
    assert _parent_of(answer) == server.context.span_id
    assert _parent_of(retrieval) == answer.context.span_id
    assert _parent_of(embedding) == retrieval.context.span_id
    assert _parent_of(chat) == answer.context.span_id
    assert _parent_of(upstream) == chat.context.span_id

    assert answer.attributes == {
        "gen_ai.prompt.name": "policy-qa",
        "prompt_rollouts.version": "1.1.0",
        "prompt_rollouts.outcome": body["outcome"],
        "prompt_rollouts.tenant": "anonymous",  # every span of a request names its tenant
    }
    assert body["outcome"] == "answered"
    port = httpx.URL(url).port
    assert chat.kind is SpanKind.CLIENT and chat.status.status_code is StatusCode.UNSET
    attributes = dict(chat.attributes or {})
    response_id = attributes.pop("gen_ai.response.id")
    assert attributes.pop("prompt_rollouts.tenant") == "anonymous"
    assert isinstance(response_id, str) and response_id.startswith("chatcmpl-")
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 400,
        "server.address": "127.0.0.1",
        "server.port": port,
        "gen_ai.usage.input_tokens": body["usage"]["input_tokens"],
        "gen_ai.usage.output_tokens": body["usage"]["output_tokens"],
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.response.finish_reasons": ("stop",),
    }
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    assert retrieval.attributes is not None
    assert retrieval.attributes["gen_ai.operation.name"] == "retrieval"
    assert retrieval.attributes["gen_ai.data_source.id"] == "policies"
    assert retrieval.attributes["gen_ai.retrieval.top_k"] == 3
    assert retrieval.attributes["db.system.name"] == "qdrant"
    rows = retrieval.attributes["db.response.returned_rows"]
    assert isinstance(rows, int) and rows >= len(body["citations"]) >= 1
    assert embedding.attributes is not None
    assert embedding.attributes["gen_ai.operation.name"] == "embeddings"
    assert embedding.attributes["gen_ai.provider.name"] == "onnxruntime"
    assert embedding.attributes["gen_ai.embeddings.dimension.count"] == 384
    assert embedding.kind is SpanKind.INTERNAL

    recorded = _everything_recorded(spans)
    assert not any(key in recorded for key in CONTENT_KEYS)
    assert "digital item" not in recorded


@pytest.mark.integration
def test_content_capture_records_redacted_messages(
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
    fake_model: tuple[str, FakeModelState],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(tracing.CAPTURE_CONTENT_ENV, "true")
    url, _ = fake_model
    with TestClient(_model_app(url, provider)) as client:
        response = _ask(client, f"{QUESTION} Reply to {EMAIL} please.")
    assert response.status_code == 200
    spans = exporter.get_finished_spans()

    chat = _one(spans, "chat gpt-4o-mini")
    assert chat.attributes is not None
    sent = json.loads(str(chat.attributes["gen_ai.input.messages"]))
    assert [m["role"] for m in sent] == ["system", "user"]
    assert all(part["type"] == "text" for m in sent for part in m["parts"])
    assert "digital item" in sent[1]["parts"][0]["content"]
    (received,) = json.loads(str(chat.attributes["gen_ai.output.messages"]))
    assert received["role"] == "assistant" and received["finish_reason"] == "stop"
    assert received["parts"][0]["content"] == response.json()["answer"]
    retrieval = _one(spans, "retrieval policies")
    assert retrieval.attributes is not None
    assert "digital item" in str(retrieval.attributes["gen_ai.retrieval.query.text"])
    documents = json.loads(str(retrieval.attributes["gen_ai.retrieval.documents"]))
    assert {d["id"] for d in documents} >= {c["id"] for c in response.json()["citations"]}

    assert EMAIL not in _everything_recorded(spans)


@pytest.mark.integration
def test_failing_upstream_records_error_type_on_every_attempt(
    exporter: InMemorySpanExporter,
    provider: TracerProvider,
    fake_model: tuple[str, FakeModelState],
) -> None:
    url, state = fake_model
    app = _model_app(url, provider, model_backoff_base_seconds=0, model_backoff_max_seconds=0)
    httpx.post(f"{url}/admin/faults", json={"status": 503}).raise_for_status()
    try:
        before = len(state.requests)
        with TestClient(app) as client:
            response = _ask(client, f"{QUESTION} Mail {EMAIL}.")
        attempts = [r for r in state.requests[before:] if r.path == "/v1/chat/completions"]
    finally:
        httpx.delete(f"{url}/admin/faults").raise_for_status()
    assert response.status_code == 503
    spans = exporter.get_finished_spans()

    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == len(attempts) >= 2
    assert {s.name for s in chats} == {"chat gpt-4o-mini", "chat gpt-4.1-nano"}
    for chat in chats:
        assert chat.attributes is not None
        assert chat.attributes["error.type"] == "503"
        assert chat.status.status_code is StatusCode.ERROR
        assert "gen_ai.usage.input_tokens" not in chat.attributes
    answer = _one(spans, "answer policy-qa")
    assert answer.attributes is not None
    assert answer.attributes["error.type"] == "UpstreamUnavailableError"
    assert answer.attributes["prompt_rollouts.outcome"] == "unavailable"
    assert EMAIL not in _everything_recorded(spans)


def test_embedded_answerer_has_no_chat_span(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    with TestClient(create_app(build_settings(), tracer_provider=provider)) as client:
        exporter.clear()
        assert _ask(client).status_code == 200
    spans = exporter.get_finished_spans()
    answer = _one(spans, "answer policy-qa")
    assert not [s for s in spans if s.name.startswith("chat ")]
    embeddings = _named(spans, f"embeddings {MINILM_MODEL_ID}")
    assert len(embeddings) >= 2  # the query, then the passages' sentences
    assert {_parent_of(s) for s in embeddings} <= {
        answer.context.span_id,
        _one(spans, "retrieval policies").context.span_id,
    }


def _batch_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("OtelBatch")}


def test_a_provider_traces_only_the_app_it_was_given_to(
    exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    """No module state: an app created later without a provider traces nothing into the
    first app's provider (tracing is off for it: no OTEL_* variable)."""
    with TestClient(create_app(build_settings(), tracer_provider=provider)) as client:
        assert _ask(client).status_code == 200
    assert _named(exporter.get_finished_spans(), "answer policy-qa")
    exporter.clear()
    with TestClient(create_app(build_settings())) as client:
        assert _ask(client).status_code == 200
    assert exporter.get_finished_spans() == ()


def test_tracing_is_off_without_otel_variables(caplog: pytest.LogCaptureFixture) -> None:
    threads = _batch_threads()
    app = create_app(build_settings())
    with TestClient(app) as client:
        assert _ask(client).status_code == 200
        assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
        own = app.state.resources.tracing
        assert not own.enabled and not own.capture_content
        assert isinstance(own.tracer, trace.NoOpTracer)
    assert tracing.configure_tracing(FastAPI()) is None
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert _batch_threads() == threads
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    """An OTLP/HTTP receiver on 127.0.0.1 that keeps every export request's body."""
    bodies: list[bytes] = []
    receiver = FastAPI()

    @receiver.post("/v1/traces")
    async def traces(request: Request) -> Response:
        bodies.append(await request.body())
        ok = ExportTraceServiceResponse().SerializeToString()
        return Response(ok, media_type="application/x-protobuf")

    with serve_in_thread(receiver) as url:
        yield url, bodies


@pytest.mark.integration
def test_otlp_endpoint_exports_on_shutdown(
    collector: tuple[str, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, bodies = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "answers-under-test")
    threads = _batch_threads()
    app = create_app(build_settings())
    with TestClient(app) as client:
        assert _ask(client).status_code == 200
        assert client.get("/healthz").status_code == 200
        own = app.state.resources.tracing
        assert own.enabled and not isinstance(own.tracer, trace.NoOpTracer)
        assert _batch_threads() > threads
        assert bodies == []  # batched until the lifespan ends
    assert not own.enabled and isinstance(own.tracer, trace.NoOpTracer)
    assert _batch_threads() == threads
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)

    names: set[str] = set()
    services: set[str] = set()
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                names.update(span.name for span in scope_spans.spans)
    assert services == {"answers-under-test"}
    assert {"POST /v1/answers", "answer policy-qa", "retrieval policies"} <= names
    assert not any("healthz" in name for name in names)
