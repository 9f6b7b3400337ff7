"""The ``request`` event: content modes, redaction, log injection, request ids."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from service.http.middleware import RequestIdMiddleware
from service.telemetry.logs import ROUTED_LOGGERS, Verbatim, configure_logging
from service.telemetry.request_log import (
    MAX_CONTENT_CHARS,
    ContentMode,
    RequestLogger,
    RequestRecord,
    build_request_fields,
)
from tests.support.servers import serve_in_thread

RECORD = RequestRecord(
    prompt="refund-policy",
    version="1.4.0",
    model="gpt-4o-mini",
    outcome="answered",
    status=200,
    latency_ms=812.4567,
    input_tokens=912,
    output_tokens=88,
    cost_usd=0.000189,
    retries=1,
    cache_hit=False,
    fallback_used=True,
    messages=[
        ("system", "Answer from the policy."),
        ("user", "I'm jane@example.com, card 4111 1111 1111 1111."),
    ],
    response="Call +44 20 7946 0958 [1].",
    variables={"question": "Refund to DE89 3704 0044 0532 0130 00?", "tier": "gold", "n": 2},
    error="upstream said: bad key sk-proj-Abc123def456ghi789 for jane@example.com",
)
METADATA = {
    "prompt": "refund-policy",
    "version": "1.4.0",
    "model": "gpt-4o-mini",
    "outcome": "answered",
    "status": 200,
    "latency_ms": 812.457,
    "input_tokens": 912,
    "output_tokens": 88,
    "cost_usd": 0.000189,
    "retries": 1,
    "cache_hit": False,
    "fallback_used": True,
}
REDACTED_ERROR = "upstream said: bad key [SECRET] for [EMAIL]"


@pytest.fixture(autouse=True)
def json_logging() -> Iterator[None]:
    """JSON logging at DEBUG; the root and routed loggers and structlog restored after."""
    names = ["", *ROUTED_LOGGERS]
    saved = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level)
        for name in names
    }
    config = structlog.get_config()
    configure_logging("DEBUG")
    yield
    for name, (handlers, level) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).setLevel(level)
    structlog.configure(**config)


def _plain(fields: dict[str, object]) -> dict[str, object]:
    return {k: v.value if isinstance(v, Verbatim) else v for k, v in fields.items()}


def _lines(out: str) -> list[dict[str, object]]:
    """Every line of `out` as a JSON object (fails on a line that is anything else)."""
    parsed = [json.loads(line) for line in out.splitlines()]
    assert all(isinstance(item, dict) for item in parsed)
    return parsed


# --- the fields per mode (pure) --------------------------------------------------------


def test_off_logs_metadata_and_the_redacted_error_only() -> None:
    assert _plain(build_request_fields(RECORD, ContentMode.OFF)) == {
        **METADATA,
        "content": "off",
        "error": REDACTED_ERROR,
    }


def test_redacted_logs_content_redacted() -> None:
    assert _plain(build_request_fields(RECORD, ContentMode.REDACTED)) == {
        **METADATA,
        "content": "redacted",
        "error": REDACTED_ERROR,
        "messages": [
            {"role": "system", "content": "Answer from the policy."},
            {"role": "user", "content": "I'm [EMAIL], card [CARD]."},
        ],
        "response": "Call [PHONE] [1].",
        "variables": {"question": "Refund to [IBAN]?", "tier": "gold", "n": 2},
    }


def test_full_logs_content_as_is_but_still_redacts_the_error() -> None:
    assert _plain(build_request_fields(RECORD, ContentMode.FULL)) == {
        **METADATA,
        "content": "full",
        "error": REDACTED_ERROR,
        "messages": [
            {"role": "system", "content": "Answer from the policy."},
            {"role": "user", "content": "I'm jane@example.com, card 4111 1111 1111 1111."},
        ],
        "response": "Call +44 20 7946 0958 [1].",
        "variables": {"question": "Refund to DE89 3704 0044 0532 0130 00?", "tier": "gold", "n": 2},
    }


def test_no_error_no_response() -> None:
    record = replace(RECORD, error=None, response=None, model=None)

    fields = _plain(build_request_fields(record, ContentMode.REDACTED))

    assert (fields["error"], fields["response"], fields["model"]) == (None, None, None)


#: An e-mail address straddling the cut: redaction must see it whole.
LONG = "x" * (MAX_CONTENT_CHARS - 4) + " jane.doe@example.com" + " y" * 5000
CUT = f"[... {len(LONG)} characters in all]"


@pytest.mark.parametrize("mode", [ContentMode.REDACTED, ContentMode.FULL], ids=str)
def test_long_content_is_cut_after_redaction(mode: ContentMode) -> None:
    record = replace(RECORD, messages=[("user", LONG)], response=LONG, error=LONG)

    fields = _plain(build_request_fields(record, mode))

    redacted = "x" * (MAX_CONTENT_CHARS - 4) + " [EM" + CUT
    kept = LONG[:MAX_CONTENT_CHARS] + CUT if mode is ContentMode.FULL else redacted
    assert fields["messages"] == [{"role": "user", "content": kept}]
    assert fields["response"] == kept
    assert fields["error"] == redacted


# --- the emitted line ------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(ContentMode), ids=str)
def test_log_writes_one_request_line(mode: ContentMode, capsys: pytest.CaptureFixture[str]) -> None:
    RequestLogger(mode).log(RECORD)

    [line] = _lines(capsys.readouterr().out)
    assert (line["event"], line["level"], line["logger"]) == ("request", "info", "service.requests")
    assert line["error"] == REDACTED_ERROR
    assert {k: line[k] for k in METADATA} == METADATA
    assert ("jane@example.com" in json.dumps(line)) is (mode is ContentMode.FULL)


def test_server_errors_log_at_error_level(capsys: pytest.CaptureFixture[str]) -> None:
    RequestLogger(ContentMode.OFF).log(replace(RECORD, status=503, outcome="unavailable"))

    [line] = _lines(capsys.readouterr().out)
    assert (line["level"], line["outcome"], line["status"]) == ("error", "unavailable", 503)


class _Unreadable(dict[str, object]):
    """Variables that fail when read: proof that a filtered-out event built no fields."""

    def items(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the fields of a filtered-out event were built")


def test_below_the_level_nothing_is_built_and_errors_still_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("WARNING")
    logger = RequestLogger(ContentMode.REDACTED)
    unread = replace(RECORD, variables=_Unreadable(tone="formal"))

    logger.log(unread)  # info: filtered out, and its content never redacted
    logger.log(replace(RECORD, status=502, outcome="unavailable"))

    [line] = _lines(capsys.readouterr().out)
    assert (line["level"], line["status"]) == ("error", 502)
    with pytest.raises(AssertionError, match="were built"):
        build_request_fields(unread, ContentMode.REDACTED)


# --- log injection ---------------------------------------------------------------------

FORGERIES = [
    '"}\n{"level":"error","event":"forged"}',
    "line one\r\nline two\n\n",
    "\x1b[31mred\x1b[0m\x00\x07\x08",
    "lone \ud800 surrogate \udfff",
    "\u2028separator\u2029paragraph\x85next",
    '\\"}\\n{\\"level\\":\\"error\\"}',
]


@pytest.mark.parametrize("mode", list(ContentMode), ids=str)
@pytest.mark.parametrize(
    "text", FORGERIES, ids=["json", "newlines", "controls", "surrogates", "separators", "escaped"]
)
def test_user_text_cannot_forge_lines(
    text: str, mode: ContentMode, capsys: pytest.CaptureFixture[str]
) -> None:
    record = replace(
        RECORD, messages=[("user", text)], response=text, variables={"q": text}, error=text
    )

    RequestLogger(mode).log(record)
    logging.getLogger("service.x").warning("user said %s", text)
    structlog.get_logger("service.y").info(text, text=text)

    lines = _lines(capsys.readouterr().out)
    assert [line["logger"] for line in lines] == ["service.requests", "service.x", "service.y"]
    if mode is ContentMode.FULL:
        assert lines[0]["response"] == text


_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=200)


@given(text=_ANY_TEXT, mode=st.sampled_from(ContentMode))
def test_any_text_makes_exactly_one_line_per_event(text: str, mode: ContentMode) -> None:
    record = replace(
        RECORD, messages=[("user", text)], response=text, variables={"q": [text]}, error=text
    )
    out = io.StringIO()

    with contextlib.redirect_stdout(out):
        RequestLogger(mode).log(record)
        logging.getLogger("service.x").error("user said %s", text)

    lines = _lines(out.getvalue())
    assert [line["logger"] for line in lines] == ["service.requests", "service.x"]
    assert out.getvalue().isascii()


# --- request ids -----------------------------------------------------------------------


async def _answer(request: Request) -> PlainTextResponse:
    structlog.get_logger("service.answers").info("answering")
    logging.getLogger("service.answers").info("stdlib line")
    RequestLogger(ContentMode.OFF).log(RECORD)
    return PlainTextResponse("ok")


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = RequestIdMiddleware(Starlette(routes=[Route("/answer", _answer)]))
    with TestClient(app) as test_client:
        yield test_client


def test_request_id_on_every_line_of_the_request(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.get("/answer", headers={"x-request-id": "req-12345678"})
    structlog.get_logger("service.after").info("after the request")

    *inside, after = _lines(capsys.readouterr().out)
    assert [line["event"] for line in inside] == ["answering", "stdlib line", "request"]
    assert {line["request_id"] for line in inside} == {"req-12345678"}
    assert "request_id" not in after


def test_generated_request_id_matches_the_header(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    response = client.get("/answer")

    lines = _lines(capsys.readouterr().out)
    assert {line["request_id"] for line in lines} == {response.headers["x-request-id"]}


@pytest.mark.integration
def test_request_id_on_uvicorn_access_line(capsys: pytest.CaptureFixture[str]) -> None:
    app = RequestIdMiddleware(Starlette(routes=[Route("/answer", _answer)]))
    with serve_in_thread(app) as base_url:
        configure_logging("INFO")  # as create_app does, after uvicorn set up its logging
        logging.getLogger("uvicorn.access").setLevel("INFO")
        response = httpx.get(f"{base_url}/answer", headers={"x-request-id": "req-87654321"})

    lines = _lines(capsys.readouterr().out)
    # Only this server's line: other tests' servers may log their own access lines.
    access = [
        line
        for line in lines
        if line["logger"] == "uvicorn.access" and "/answer" in str(line["event"])
    ]
    assert response.status_code == 200
    assert [line["request_id"] for line in access] == ["req-87654321"]
    # A loopback client names no one: kept (other client addresses are redacted).
    assert str(access[0]["event"]).startswith("127.0.0.1:")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (ContentMode.REDACTED, {"[EMAIL]": "formal", "tone": "[PHONE]"}),
        (ContentMode.FULL, {"jane@example.com": "formal", "tone": "+44 20 7946 0958"}),
    ],
)
def test_variable_names_are_redacted_like_values(
    mode: ContentMode, expected: dict[str, str]
) -> None:
    variables = {"jane@example.com": "formal", "tone": "+44 20 7946 0958"}

    fields = build_request_fields(replace(RECORD, variables=variables), mode)

    logged = fields["variables"]
    assert isinstance(logged, Verbatim)
    assert logged.value == expected
