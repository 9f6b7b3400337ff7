"""No personal data survives in logs or spans, wherever a caller puts it.

Property test: Hypothesis draws disguised canaries (see ``pii_canaries``) and sends them
through the real app (its lifespan, the extractive answerer, an in-memory Qdrant) in
every place a caller controls: variable names and values, the question, query strings,
the path, headers (User-Agent, Referer, X-Request-ID), the texts error messages
quote, and the OpenAI-compatible façade's metadata, earlier turns, ``user`` and ``model``.
Every JSON log line (keys and values) and every finished span (name, attributes, events,
status) is then searched for each canary's marker.

With ``LOG_CONTENT=full`` the operator asked for raw content: the request event's
``messages``, ``response`` and ``variables`` values are exempt, nothing else is.

A marker the app writes anyway, canary or not, proves nothing either way: Hypothesis also
draws words from the code's own constants (``response``, ``variable``…), which the logs
and spans hold as keys, error types and stack frames. Such markers are set aside
(:func:`vocabulary`: the outputs of the same requests carrying a harmless text).
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.app import create_app
from tests.service.http.routers.conftest import build_settings
from tests.service.pii_canaries import Canary, canaries, leaked

MODES = ("off", "redacted", "full")
#: Content fields of the ``request`` event that LOG_CONTENT=full logs raw by design.
FULL_CONTENT = ("messages", "response", "variables")

Traced = tuple[TestClient, InMemorySpanExporter, str]


@pytest.fixture(scope="module", params=MODES)
def traced(request: pytest.FixtureRequest) -> Iterator[Traced]:
    """The app in one LOG_CONTENT mode, its spans collected in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        app = create_app(build_settings(log_content=request.param), tracer_provider=provider)
        with TestClient(app) as client:
            yield client, exporter, request.param
    finally:
        provider.shutdown()


@pytest.fixture(scope="module")
def vocabulary(traced: Traced) -> list[str]:
    """What the app logs and traces for the requests of :func:`send_everywhere` when they
    carry a harmless text: a marker found in there would be found whatever the redaction."""
    client, exporter, mode = traced
    exporter.clear()
    with redirect_stdout(io.StringIO()) as out:
        send_everywhere(client, Canary("plain", "harmless", "harmless"))
    found = log_strings(out.getvalue(), mode) + span_strings(exporter.get_finished_spans())
    exporter.clear()
    assert found, "nothing was logged or traced"
    return found


def _strings(value: object) -> Iterator[str]:
    """Every key and string value inside `value`."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def log_strings(out: str, mode: str) -> list[str]:
    """Every key and string value of every log line (each must be one JSON object)."""
    found: list[str] = []
    for line in out.splitlines():
        event = json.loads(line)
        assert isinstance(event, dict), line
        if mode == "full" and event.get("event") == "request":
            event = {k: v for k, v in event.items() if k not in FULL_CONTENT}
        found += _strings(event)
    return found


def span_strings(spans: tuple[ReadableSpan, ...]) -> list[str]:
    """Names, attribute keys and values, events and statuses of `spans`."""
    found: list[str] = []
    for span in spans:
        found.append(span.name)
        found.append(span.status.description or "")
        found += _strings(dict(span.attributes or {}))
        for event in span.events:
            found.append(event.name)
            found += _strings(dict(event.attributes or {}))
    return found


def send_everywhere(client: TestClient, canary: Canary) -> None:
    """One request per place a caller can put `canary`."""
    text = canary.text
    quoted = quote(text, safe="")
    headers = {"User-Agent": quoted, "Referer": f"https://example.org/?q={quoted}"}
    question = {"prompt": "policy-qa", "question": f"My details: {text}. Refund?"}
    client.post(f"/v1/answers?ref={quoted}&{quoted}=1", json=question, headers=headers)
    client.post("/v1/answers", json={**question, "variables": {text: "formal"}})
    client.post("/v1/answers", json={**question, "variables": {"tone": text}})
    client.post("/v1/answers", json={"prompt": text, "question": text})
    client.post("/v1/answers", json=question, headers={"X-Request-ID": quoted})
    client.post("/v1/answers", content=f'{{"prompt": "{text}"'.encode(), headers=headers)
    client.get(f"/v1/{quoted}", params={"email": text})
    client.get("/v1/prompts", params={text: text}, headers={"Idempotency-Key": quoted})
    # The OpenAI-compatible façade: metadata, the question, earlier turns, the model string.
    turns = [{"role": "user", "content": text}, {"role": "assistant", "content": text}]
    ask = [{"role": "user", "content": question["question"]}]
    chat = {"model": "prompts/policy-qa", "messages": ask, "user": text}
    client.post(
        "/v1/chat/completions",
        json={**chat, "messages": [*turns, *ask], "metadata": {"tone": text}},
    )
    client.post("/v1/chat/completions", json={**chat, "model": f"prompts/{text}"})


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(canary=canaries())
def test_no_canary_survives_in_logs_or_spans(
    traced: Traced, vocabulary: list[str], capsys: pytest.CaptureFixture[str], canary: Canary
) -> None:
    client, exporter, mode = traced
    assume(leaked(canary, vocabulary) == [])  # the app's own words: nothing to tell
    capsys.readouterr()
    exporter.clear()

    send_everywhere(client, canary)

    logs = log_strings(capsys.readouterr().out, mode)
    spans = span_strings(exporter.get_finished_spans())
    assert logs and spans, "nothing was logged or traced: the test would prove nothing"
    assert leaked(canary, logs) == [], f"{canary} survives in the logs ({mode})"
    assert leaked(canary, spans) == [], f"{canary} survives in the spans ({mode})"


@given(canary=canaries())
@settings(max_examples=200, deadline=None)
def test_canaries_are_found_when_not_redacted(canary: Canary) -> None:
    """The detector itself: every canary, sent as is, is seen by `leaked`."""
    assert leaked(canary, [f"before {canary.text} after"]) != []
    assert leaked(canary, [quote(canary.text, safe="")]) != []


def test_send_everywhere_reaches_logs_and_spans(traced: Traced, capsys: Any) -> None:
    """A plain marker sent everywhere shows up in the outputs: the places are live."""
    client, exporter, mode = traced
    capsys.readouterr()
    exporter.clear()
    marker = Canary("plain", "zzmarkerzz", "zzmarkerzz")
    send_everywhere(client, marker)
    spans = span_strings(exporter.get_finished_spans())
    logs = log_strings(capsys.readouterr().out, mode)
    assert leaked(marker, spans), "the marker should be visible in span attributes"
    assert leaked(marker, logs), "the marker should be visible in log lines"


#: One disguised canary of each kind, for the real server (Hypothesis drives the rest).
FIXED = (
    Canary("email", "jane.doe%40example.com", "jane.doe"),
    Canary("email", "j\u200bohn\uff20example.com", "john"),
    Canary("card", "4111_1111_1111_1111", "4111111111111111"),
    Canary("iban", "de89-3704-0044-0532-0130-00", "DE89370400440532013000"),
    Canary("phone", "%2B44+20+7946+0958", "442079460958"),
    Canary(
        "aws",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    Canary("hf", "hf_aZ7abcdefghijklmnopqrstuvwxyz0123", "aZ7abcdefghijklmnopqrstuvwxyz0123"),
)


@pytest.mark.integration
def test_real_server_access_log_and_listener_line(capsys: pytest.CaptureFixture[str]) -> None:
    """uvicorn's own access and start-up lines: canaries go, the listen address stays."""
    app = create_app(build_settings())  # routes uvicorn's loggers through ours
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="info", log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as http:
            for canary in FIXED:
                http.get(f"/v1/prompts?who={canary.text}&{canary.text}=1")
                http.get(f"/v1/{canary.text}", headers={"User-Agent": quote(canary.text)})
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    access = [line for line in lines if line.get("logger") == "uvicorn.access"]
    assert len(access) == 2 * len(FIXED), "every request has its access line"
    listening = [str(line["event"]) for line in lines if "running on" in str(line["event"])]
    assert listening == [f"Uvicorn running on http://127.0.0.1:{port} (Press CTRL+C to quit)"]
    assert any("1.1.0" in str(line.get("event")) for line in lines), "versions stay readable"
    strings = log_strings(out, "redacted")
    for canary in FIXED:
        assert leaked(canary, strings) == [], canary
