"""``/v1/answers`` with an output contract, over real HTTP against the fake model.

The fake model answers a ``response_format: json_schema`` request with the schema's minimal
document, and its ``invalid_json_rate``/``off_schema_rate`` faults break answers (never a
repair conversation): the service repairs, or ends ``invalid_output`` (502).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from fakemodel.app import FakeModelState
from fakemodel.structured import build_schema_instance
from service.app import create_app
from tests.service.http.routers.conftest import build_settings

pytestmark = pytest.mark.integration

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["category", "urgent"],
    "additionalProperties": False,
    "properties": {
        "category": {"enum": ["billing", "shipping", "other"]},
        "urgent": {"type": "boolean"},
    },
}
TIMEOUT = 2.0


def _manifest(prompt: str, repair: int) -> str:
    return f"""\
apiVersion: promptrollouts.io/v1alpha1
kind: PromptVersion
metadata:
  name: {prompt}-1-0-0
spec:
  prompt: {prompt}
  version: 1.0.0
  owner: tests@example.com
  changelog: First version.
  template:
    system: Classify the support ticket. Reply with one JSON object only.
    user: "{{{{ question }}}}"
  model:
    name: gpt-4o-mini
    timeoutSeconds: {TIMEOUT}
  output:
    format: json
    repair: {repair}
    schema:
      type: object
      required: [category, urgent]
      additionalProperties: false
      properties:
        category: {{enum: [billing, shipping, other]}}
        urgent: {{type: boolean}}
"""


@pytest.fixture(scope="module")
def client(
    fake_model: tuple[str, FakeModelState], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    prompts: Path = tmp_path_factory.mktemp("prompts")
    (prompts / "triage-1.0.0.yaml").write_text(_manifest("triage", 1), encoding="utf-8")
    (prompts / "strict-1.0.0.yaml").write_text(_manifest("strict", 0), encoding="utf-8")
    url, _ = fake_model
    settings = build_settings(
        prompts_dir=prompts, corpora={}, model_base_url=f"{url}/v1", model_api_key="sk-test"
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def fake(fake_model: tuple[str, FakeModelState]) -> Iterator[httpx.Client]:
    url, state = fake_model
    with httpx.Client(base_url=url, timeout=10) as admin:
        admin.delete("/admin/faults").raise_for_status()
        state.requests.clear()
        yield admin
        admin.delete("/admin/faults").raise_for_status()


def _ask(client: TestClient, prompt: str = "triage") -> Any:
    return client.post("/v1/answers", json={"prompt": prompt, "question": "Charged twice?"})


def _metric(client: TestClient, prompt: str, outcome: str) -> float:
    needle = (
        f'promptrollouts_requests_total{{outcome="{outcome}",prompt="{prompt}",version="1.0.0"}}'
    )
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(needle):
            return float(line.split()[-1])
    return 0.0


def test_the_answer_is_the_json_text_and_output_the_document(
    client: TestClient, fake: httpx.Client, fake_model: tuple[str, FakeModelState]
) -> None:
    response = _ask(client)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "answered"
    assert (
        body["output"] == build_schema_instance(SCHEMA) == {"category": "billing", "urgent": False}
    )
    assert body["answer"] == '{"category":"billing","urgent":false}'
    (sent,) = fake_model[1].requests
    assert sent.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "triage", "schema": SCHEMA, "strict": False},
    }


def test_invalid_json_is_repaired_by_a_second_call(
    client: TestClient, fake: httpx.Client, fake_model: tuple[str, FakeModelState]
) -> None:
    fake.post("/admin/faults", json={"invalid_json_rate": 1.0}).raise_for_status()

    response = _ask(client)

    assert response.status_code == 200, response.text
    assert response.json()["output"] == {"category": "billing", "urgent": False}
    first, repair = fake_model[1].requests
    assert first.body["response_format"] == repair.body["response_format"]
    roles = [m["role"] for m in repair.body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "not valid JSON" in repair.body["messages"][-1]["content"]
    repairs = 'promptrollouts_output_repairs_total{prompt="triage",version="1.0.0"}'
    assert any(line.startswith(f"{repairs} ") for line in client.get("/metrics").text.splitlines())


def test_off_schema_without_repair_is_a_502_invalid_output_problem(
    client: TestClient, fake: httpx.Client
) -> None:
    fake.post("/admin/faults", json={"off_schema_rate": 1.0}).raise_for_status()
    before = _metric(client, "strict", "invalid_output")

    response = _ask(client, "strict")

    assert response.status_code == 502, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["outcome"] == "invalid_output"
    assert problem["type"].endswith("invalid-output")
    assert "$ 'category' is a required property" in problem["detail"]
    assert _metric(client, "strict", "invalid_output") == before + 1


def test_the_repair_stays_within_the_request_deadline(
    client: TestClient, fake: httpx.Client, fake_model: tuple[str, FakeModelState]
) -> None:
    # Each call takes 65 % of the deadline: the repair starts, and is cut off at the deadline.
    faults = {"invalid_json_rate": 1.0, "latency_ms": TIMEOUT * 650}
    fake.post("/admin/faults", json=faults).raise_for_status()

    started = time.monotonic()
    response = _ask(client)
    elapsed = time.monotonic() - started

    assert response.status_code == 502, response.text
    assert response.json()["outcome"] == "invalid_output"
    assert "repair" in response.json()["detail"]
    assert len(fake_model[1].requests) == 2
    assert elapsed < TIMEOUT + 1.0


def _events(text: str) -> list[tuple[str, Any]]:
    """(event, data) of an SSE body."""
    found: list[tuple[str, Any]] = []
    for block in text.split("\n\n"):
        lines = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_a_stream_carries_the_repaired_document_whole_in_one_delta(
    client: TestClient, fake: httpx.Client, fake_model: tuple[str, FakeModelState]
) -> None:
    fake.post("/admin/faults", json={"invalid_json_rate": 1.0}).raise_for_status()

    body = {"prompt": "triage", "question": "Charged twice?", "stream": True}
    response = client.post("/v1/answers", json=body)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert [name for name, _ in events] == ["delta", "answer"]
    assert events[0][1]["text"] == '{"category":"billing","urgent":false}'
    assert events[1][1]["output"] == {"category": "billing", "urgent": False}
    assert len(fake_model[1].requests) == 2  # the first answer and its repair, none streamed
    assert all(r.body.get("stream") is not True for r in fake_model[1].requests)


def test_a_stream_whose_output_stays_invalid_is_a_502_problem_not_a_stream(
    client: TestClient, fake: httpx.Client
) -> None:
    fake.post("/admin/faults", json={"off_schema_rate": 1.0}).raise_for_status()

    body = {"prompt": "strict", "question": "Charged twice?", "stream": True}
    response = client.post("/v1/answers", json=body)

    assert response.status_code == 502, response.text
    assert response.json()["outcome"] == "invalid_output"


def test_offline_a_contract_is_a_502_that_says_to_set_model_base_url(
    local_client: TestClient,
) -> None:
    # The shipped order-status version has an output contract; without MODEL_BASE_URL the
    # embedded extractive answerer answers in prose and is not asked to repair it.
    response = local_client.post(
        "/v1/answers", json={"prompt": "order-status", "question": "Where is order LK-48213?"}
    )

    assert response.status_code == 502, response.text
    problem = response.json()
    assert problem["outcome"] == "invalid_output"
    assert problem["detail"].startswith("the embedded extractive answerer")
    assert "cannot produce JSON" in problem["detail"]
    assert "set MODEL_BASE_URL" in problem["detail"]
    assert "not valid JSON" in problem["detail"]  # the problem itself is still named
    repairs = 'promptrollouts_output_repairs_total{prompt="order-status"'
    assert not any(
        line.startswith(repairs) and not line.endswith(" 0.0")
        for line in local_client.get("/metrics").text.splitlines()
    )
