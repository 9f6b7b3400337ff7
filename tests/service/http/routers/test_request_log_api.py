"""The `request` log event of real requests: one JSON line each, request id bound, PII redacted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app

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
