"""The `request` log event of real requests: one JSON line each, request id bound, PII redacted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.http import request_ids

from .conftest import build_settings

EMAIL = "jane.doe@example.com"


def _events(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "request"]


@pytest.mark.parametrize("mode", ["redacted", "off", "full"])
def test_request_event_per_answer(capfd: pytest.CaptureFixture[str], mode: str) -> None:
    with TestClient(create_app(build_settings(log_content=mode))) as client:
        capfd.readouterr()
        answered = client.post(
            "/v1/answers",
            json={
                "prompt": "policy-qa",
                "question": f"I am {EMAIL}. Can I refund a digital item after two weeks?",
                "variables": {"tone": "formal"},
            },
        )
        refused = client.post(
            "/v1/answers", json={"prompt": "policy-qa", "question": "q", "variables": {"x": 1}}
        )
        out = capfd.readouterr().out
    first, second = _events(out)
    assert first["request_id"] == answered.headers["x-request-id"]
    assert (first["prompt"], first["version"], first["outcome"]) == (
        "policy-qa",
        "1.1.0",
        "answered",
    )
    assert first["input_tokens"] == answered.json()["usage"]["input_tokens"]
    assert {"latency_ms", "cost_usd", "retries", "cache_hit", "fallback_used", "model"} <= set(
        first
    )
    assert (second["outcome"], second["status"]) == ("invalid", refused.status_code)
    assert second["request_id"] == refused.headers["x-request-id"]
    if mode == "off":
        assert "messages" not in first and "response" not in first and "variables" not in first
        assert EMAIL not in out
    elif mode == "redacted":
        assert "[EMAIL]" in json.dumps(first["messages"]) and EMAIL not in out
        assert first["variables"] == {"tone": "formal"}
    else:
        assert EMAIL in json.dumps(first["messages"])


def test_a_generated_id_that_looks_like_a_card_is_never_the_one_logged(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A uuid4 holding a Luhn-valid digit run would be logged as ``…[CARD]…``: it is redrawn,
    so the log line and the caller's X-Request-ID agree. A caller's own id that looks like a
    card is personal data as far as the log can tell: it is echoed, and logged redacted."""
    card_like, clean = "ab4111111111111111cdef0123abcdef", "0123abcd" * 4
    draws = iter([card_like, clean])
    monkeypatch.setattr(request_ids, "draw_hex", lambda: next(draws))
    body = {"prompt": "policy-qa", "question": "Refunds?", "variables": {"tone": "formal"}}
    with TestClient(create_app(build_settings())) as client:
        capfd.readouterr()
        generated = client.post("/v1/answers", json=body)
        supplied = client.post("/v1/answers", json=body, headers={"X-Request-ID": card_like})
        out = capfd.readouterr().out
    assert generated.headers["x-request-id"] == clean
    assert supplied.headers["x-request-id"] == card_like
    first, second = _events(out)
    assert first["request_id"] == clean
    assert "[CARD]" in second["request_id"] and "4111111111111111" not in out
