"""Which version answers: the X-Prompt-Version header, and a live local routing file."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app

from .conftest import build_settings

QUESTION = "Can I refund a digital item after two weeks?"


def _version(client: TestClient, **extra: object) -> str:
    body = {"prompt": "policy-qa", "question": QUESTION} | extra
    response = client.post("/v1/answers", json=body)
    assert response.status_code == 200, response.text
    return response.headers["x-prompt-version"]


def test_header_pins_a_version_and_the_body_wins(local_client: TestClient) -> None:
    pin = {"X-Prompt-Version": "1.0.0"}
    assert (
        local_client.post(
            "/v1/answers", json={"prompt": "policy-qa", "question": QUESTION}, headers=pin
        ).headers["x-prompt-version"]
        == "1.0.0"
    )
    both = local_client.post(
        "/v1/answers",
        json={"prompt": "policy-qa", "question": QUESTION, "version": "1.1.0"},
        headers=pin,
    )
    assert both.headers["x-prompt-version"] == "1.1.0"
    bad = local_client.post(
        "/v1/answers",
        json={"prompt": "policy-qa", "question": QUESTION},
        headers={"X-Prompt-Version": "latest"},
    )
    assert bad.status_code == 422
    assert "X-Prompt-Version" in bad.json()["detail"]


def test_routing_file_splits_traffic_sticky_per_user_and_reloads_live(tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text("policy-qa:\n  1.0.0: 70\n  1.1.0: 30\n")
    with TestClient(create_app(build_settings(routing_file=routing))) as client:
        weights = {
            i["version"]: i["weight"]
            for i in client.get("/v1/prompts").json()["items"]
            if i["prompt"] == "policy-qa"
        }
        assert weights == {"1.0.0": 70, "1.1.0": 30}
        seen = Counter(_version(client, user=f"user-{i}") for i in range(200))
        assert 0.6 < seen["1.0.0"] / 200 < 0.8
        assert {_version(client, user="alice") for _ in range(10)} == {
            _version(client, user="alice")
        }
        routing.write_text("policy-qa:\n  1.0.0: 0\n  1.1.0: 100\n")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _version(client, user="user-0") != "1.1.0":
            time.sleep(0.2)
        assert {_version(client, user=f"user-{i}") for i in range(30)} == {"1.1.0"}
        routing.write_text("policy-qa: [not, weights]\n")  # a broken edit is ignored
        time.sleep(1.5)
        assert _version(client, user="user-1") == "1.1.0"
