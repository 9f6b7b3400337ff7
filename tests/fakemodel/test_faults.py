"""Fault injection rules (pure): validation, the per-request decision, Retry-After, bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from pydantic import ValidationError

from fakemodel.errors import build_error_payload, format_retry_after, render_error_body
from fakemodel.faults import (
    Endpoint,
    ErrorBody,
    FaultAction,
    Faults,
    RetryAfterFormat,
    decide_fault,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


# --- Faults validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({}, id="nothing"),
        pytest.param({"status": 429, "retry_after": 2.5}, id="rate-limit"),
        pytest.param(
            {"status": 503, "retry_after": 0, "retry_after_format": "http-date"}, id="http-date"
        ),
        pytest.param({"status": 500, "error_body": "html", "error_rate": 0.0}, id="html-never"),
        pytest.param({"latency_ms": 250, "jitter_ms": 50}, id="latency-int-ms"),
        pytest.param({"hang": True, "models": ["gpt-4o-mini"]}, id="hang-one-model"),
        pytest.param({"reset": True, "endpoints": ["embeddings"], "times": 3}, id="reset-3x"),
        pytest.param({"malformed": True, "error_rate": 0.25}, id="malformed-quarter"),
    ],
)
def test_faults_accepts(raw: dict[str, Any]) -> None:
    faults = Faults.model_validate(raw)

    assert Faults.model_validate(faults.model_dump()) == faults


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param({"status": 399}, "greater than or equal to 400", id="status-too-low"),
        pytest.param({"status": 600}, "less than or equal to 599", id="status-too-high"),
        pytest.param({"status": "429"}, "valid integer", id="status-string"),
        pytest.param({"status": True}, "valid integer", id="status-bool"),
        pytest.param({"status": 500, "error_rate": 1.5}, "less than or equal to 1", id="rate>1"),
        pytest.param(
            {"status": 500, "error_rate": -0.1}, "greater than or equal to 0", id="rate<0"
        ),
        pytest.param({"latency_ms": -1}, "greater than or equal to 0", id="negative-latency"),
        pytest.param({"latency_ms": float("inf")}, "finite number", id="infinite-latency"),
        pytest.param({"jitter_ms": float("nan")}, "finite number", id="nan-jitter"),
        pytest.param({"status": 429, "retry_after": -1}, "greater than or equal to 0", id="ra<0"),
        pytest.param({"status": 429, "retry_after_format": "ms"}, "'seconds' or", id="ra-format"),
        pytest.param({"status": 500, "error_body": "xml"}, "'openai', 'empty' or", id="body"),
        pytest.param({"times": 0}, "greater than or equal to 1", id="times-zero"),
        pytest.param({"models": []}, "at least 1 item", id="models-empty"),
        pytest.param({"endpoints": []}, "at least 1 item", id="endpoints-empty"),
        pytest.param({"endpoints": ["completions"]}, "'chat' or 'embeddings'", id="endpoint"),
        pytest.param({"latency": 100}, "Extra inputs are not permitted", id="unknown-field"),
        pytest.param(
            {"status": 503, "hang": True}, "at most one of status, hang", id="status-and-hang"
        ),
        pytest.param(
            {"reset": True, "malformed": True}, "(got reset and malformed)", id="reset-malformed"
        ),
        pytest.param({"retry_after": 1}, "set status to use retry_after", id="ra-no-status"),
        pytest.param({"error_body": "empty"}, "set status to use error_body", id="body-no-status"),
        pytest.param(
            {"latency_ms": 10, "error_rate": 0.5}, "error_rate applies to", id="rate-no-failure"
        ),
    ],
)
def test_faults_rejects_with_a_clear_message(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Faults.model_validate(raw)


# --- decide_fault -----------------------------------------------------------------------------


def _decide(
    raw: dict[str, Any],
    *,
    model: str | None = "gpt-4o-mini",
    endpoint: Endpoint = "chat",
    roll: float = 0.0,
    remaining: int | None = None,
    jitter_roll: float = 0.0,
) -> FaultAction:
    faults = Faults.model_validate(raw)
    return decide_fault(faults, model, endpoint, roll, remaining, jitter_roll=jitter_roll)


@pytest.mark.parametrize(
    ("raw", "kwargs", "label", "remaining"),
    [
        pytest.param({}, {}, None, None, id="no-faults"),
        pytest.param({"status": 429}, {}, "status:429", None, id="status"),
        pytest.param({"hang": True}, {}, "hang", None, id="hang"),
        pytest.param({"reset": True}, {}, "reset", None, id="reset"),
        pytest.param({"malformed": True}, {}, "malformed", None, id="malformed"),
        pytest.param({"latency_ms": 5}, {}, "latency", None, id="latency"),
        pytest.param({"jitter_ms": 5}, {"jitter_roll": 0.5}, "latency", None, id="jitter-only"),
        pytest.param({"jitter_ms": 5}, {}, None, None, id="zero-jitter-roll"),
        pytest.param(
            {"latency_ms": 5, "status": 503}, {}, "latency+status:503", None, id="latency+status"
        ),
        pytest.param(
            {"status": 500, "error_rate": 0.5}, {"roll": 0.49}, "status:500", None, id="roll<rate"
        ),
        pytest.param({"status": 500, "error_rate": 0.5}, {"roll": 0.5}, None, None, id="roll=rate"),
        pytest.param({"status": 500, "error_rate": 0.0}, {"roll": 0.0}, None, None, id="rate-0"),
        pytest.param({"status": 500}, {"roll": 0.999}, "status:500", None, id="rate-1"),
        pytest.param(
            {"latency_ms": 5, "status": 500, "error_rate": 0.5},
            {"roll": 0.9},
            "latency",
            None,
            id="latency-even-when-roll-misses",
        ),
        pytest.param({"status": 429, "times": 2}, {"remaining": 2}, "status:429", 1, id="times-2"),
        pytest.param({"status": 429, "times": 2}, {"remaining": 1}, "status:429", 0, id="last"),
        pytest.param({"status": 429, "times": 2}, {"remaining": 0}, None, 0, id="healed"),
        pytest.param(
            {"status": 429, "error_rate": 0.5, "times": 2},
            {"remaining": 2, "roll": 0.7},
            None,
            2,
            id="unaffected-does-not-count",
        ),
        pytest.param(
            {"status": 429, "models": ["gpt-4.1-nano"], "times": 2},
            {"remaining": 2},
            None,
            2,
            id="other-model-does-not-count",
        ),
        pytest.param(
            {"status": 429, "models": ["gpt-4o-mini"]}, {}, "status:429", None, id="model-listed"
        ),
        pytest.param(
            {"status": 429, "models": ["gpt-4.1-nano"]}, {}, None, None, id="model-not-listed"
        ),
        pytest.param(
            {"status": 429, "models": ["gpt-4o-mini"]},
            {"model": None},
            None,
            None,
            id="no-model-with-filter",
        ),
        pytest.param({"status": 429}, {"model": None}, "status:429", None, id="no-model-all"),
        pytest.param(
            {"status": 429, "endpoints": ["embeddings"]}, {}, None, None, id="chat-excluded"
        ),
        pytest.param(
            {"status": 429, "endpoints": ["embeddings"]},
            {"endpoint": "embeddings"},
            "status:429",
            None,
            id="embeddings-included",
        ),
    ],
)
def test_decide_fault(
    raw: dict[str, Any], kwargs: dict[str, Any], label: str | None, remaining: int | None
) -> None:
    action = _decide(raw, **kwargs)

    assert action.label == label
    assert action.remaining_times == remaining


@pytest.mark.parametrize(
    ("raw", "jitter_roll", "delay_ms"),
    [
        pytest.param({"latency_ms": 200}, 0.9, 200.0, id="no-jitter"),
        pytest.param({"latency_ms": 200, "jitter_ms": 100}, 0.0, 200.0, id="jitter-floor"),
        pytest.param({"latency_ms": 200, "jitter_ms": 100}, 0.5, 250.0, id="jitter-half"),
        pytest.param({"jitter_ms": 100}, 0.25, 25.0, id="jitter-alone"),
        pytest.param({"status": 500}, 0.5, 0.0, id="no-latency"),
    ],
)
def test_decide_fault_delay(raw: dict[str, Any], jitter_roll: float, delay_ms: float) -> None:
    assert _decide(raw, jitter_roll=jitter_roll).delay_ms == pytest.approx(delay_ms)


def test_decide_fault_carries_the_error_details() -> None:
    action = _decide(
        {
            "status": 503,
            "retry_after": 7.5,
            "retry_after_format": "http-date",
            "error_body": "html",
        }
    )

    assert (action.failure, action.status, action.retry_after) == ("status", 503, 7.5)
    assert (action.retry_after_format, action.error_body) == ("http-date", "html")


@pytest.mark.parametrize("failure", ["hang", "reset", "malformed"])
def test_decide_fault_other_failures_carry_no_status(failure: str) -> None:
    action = _decide({failure: True})

    assert (action.failure, action.status, action.retry_after) == (failure, None, None)


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "fmt", "now", "expected"),
    [
        pytest.param(2, "seconds", NOW, "2", id="whole"),
        pytest.param(2.1, "seconds", NOW, "3", id="rounded-up"),
        pytest.param(0, "seconds", NOW, "0", id="zero"),
        pytest.param(0.001, "seconds", NOW, "1", id="tiny-rounds-up"),
        pytest.param(30, "http-date", NOW, "Sun, 01 Mar 2026 12:00:30 GMT", id="date"),
        pytest.param(0, "http-date", NOW, "Sun, 01 Mar 2026 12:00:00 GMT", id="date-now"),
        pytest.param(0.2, "http-date", NOW, "Sun, 01 Mar 2026 12:00:01 GMT", id="date-rounded"),
        pytest.param(
            1,
            "http-date",
            NOW + timedelta(microseconds=500_000),
            "Sun, 01 Mar 2026 12:00:02 GMT",
            id="date-now-has-microseconds",
        ),
        pytest.param(
            3600,
            "http-date",
            datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            "Sun, 01 Mar 2026 13:00:00 GMT",
            id="date-from-other-zone",
        ),
        pytest.param(
            86_400,
            "http-date",
            NOW.replace(day=28, month=2),
            "Sun, 01 Mar 2026 12:00:00 GMT",
            id="date-crosses-month",
        ),
    ],
)
def test_format_retry_after(
    seconds: float, fmt: RetryAfterFormat, now: datetime, expected: str
) -> None:
    assert format_retry_after(seconds, fmt, now) == expected


@pytest.mark.parametrize("seconds", [0.0, 0.4, 1.0, 59.9, 3600.0])
def test_format_retry_after_http_date_is_never_early(seconds: float) -> None:
    now = NOW + timedelta(microseconds=123_456)

    parsed = parsedate_to_datetime(format_retry_after(seconds, "http-date", now))

    assert now + timedelta(seconds=seconds) <= parsed < now + timedelta(seconds=seconds + 1)


def test_format_retry_after_http_date_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_retry_after(1, "http-date", datetime(2026, 3, 1, 12, 0))


# --- error bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        pytest.param(429, "requests", "rate_limit_exceeded", id="429"),
        pytest.param(400, "invalid_request_error", None, id="400"),
        pytest.param(401, "invalid_request_error", None, id="401"),
        pytest.param(500, "server_error", None, id="500"),
        pytest.param(503, "server_error", None, id="503"),
        pytest.param(599, "server_error", None, id="unnamed-5xx"),
    ],
)
def test_build_error_payload_has_openai_shape(status: int, kind: str, code: str | None) -> None:
    error = build_error_payload(status)["error"]

    assert (error["type"], error["code"]) == (kind, code)
    assert error["message"].startswith(f"Injected fault: {status} ")


@pytest.mark.parametrize(
    ("error_body", "media_type", "needle"),
    [
        pytest.param("openai", "application/json", b'"error"', id="openai"),
        pytest.param("html", "text/html; charset=utf-8", b"<h1>502 Bad Gateway</h1>", id="html"),
        pytest.param("empty", None, b"", id="empty"),
    ],
)
def test_render_error_body(error_body: ErrorBody, media_type: str | None, needle: bytes) -> None:
    content, rendered_type = render_error_body(502, error_body)

    assert rendered_type == media_type
    assert needle in content
    if error_body == "openai":
        assert json.loads(content) == build_error_payload(502)
    if error_body == "empty":
        assert content == b""
