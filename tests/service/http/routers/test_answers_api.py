"""POST /v1/answers through the app's lifespan, with real retrieval and a real HTTP model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from api.v1alpha1.manifests import ManifestError
from fakemodel.app import FakeModelState
from service.app import create_app

from .conftest import ROOT, build_settings

DIGITAL = "Can I refund a digital item after two weeks?"
OFF_TOPIC = "What is the capital of France?"
PROBLEM = "application/problem+json"


def _ask(client: TestClient, question: str, **extra: Any) -> Any:
    body = {"prompt": "policy-qa", "question": question, "variables": {"tone": "formal"}} | extra
    return client.post("/v1/answers", json=body)


def _chat_calls(state: FakeModelState) -> int:
    return sum(1 for r in state.requests if r.path == "/v1/chat/completions")


def test_embedded_default_answers_with_grounded_citations(local_client: TestClient) -> None:
    response = _ask(local_client, DIGITAL)
    assert response.status_code == 200
    body = response.json()
    assert body["outcome"] == "answered"
    assert body["model"] == "embedded-extractive"
    assert "digital-goods.md" in [c["source"] for c in body["citations"]]
    assert "14 days" in body["answer"]
    assert response.headers["x-prompt-version"] == body["version"] == "1.1.0"
    assert response.headers["x-request-id"] == body["request_id"]
    assert body["usage"]["input_tokens"] > 0 and body["latency_ms"] > 0


def test_every_extractive_sentence_is_quoted_from_a_cited_passage(local_client: TestClient) -> None:
    corpus = " ".join(p.read_text() for p in (ROOT / "data" / "policies").glob("*.md"))
    for question in (DIGITAL, "How long does delivery take?", "How do I contact support?"):
        answer = _ask(local_client, question).json()["answer"]
        for sentence in answer.split(" ["):
            quoted = sentence.split("] ", 1)[-1].strip()
            assert quoted.rstrip("]0123456789") == "" or quoted in corpus


def test_off_topic_question_gets_the_empty_answer_without_a_model_call(
    model_client: TestClient, fake_model: tuple[str, FakeModelState]
) -> None:
    _, state = fake_model
    before = _chat_calls(state)
    response = _ask(model_client, OFF_TOPIC)
    assert response.status_code == 200
    body = response.json()
    assert (body["outcome"], body["answer"], body["model"]) == (
        "unknown",
        "Not covered by policy.",
        None,
    )
    assert body["citations"] == [] and body["usage"]["cost_usd"] == 0.0
    assert _chat_calls(state) == before


def test_model_call_carries_rendered_prompt_and_key(
    model_client: TestClient, fake_model: tuple[str, FakeModelState]
) -> None:
    _, state = fake_model
    before = _chat_calls(state)
    body = _ask(model_client, DIGITAL, user="customer-42").json()
    assert _chat_calls(state) == before + 1
    sent = [r for r in state.requests if r.path == "/v1/chat/completions"][-1]
    assert sent.headers["authorization"] == "Bearer sk-test-key"
    assert sent.body["model"] == "gpt-4o-mini" and sent.body["user"] == "customer-42"
    system, user = sent.body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    assert "CONTEXT:" in user["content"] and DIGITAL in user["content"]
    assert "formal" in user["content"]
    assert body["outcome"] == "answered" and body["model"] == "gpt-4o-mini"
    assert body["citations"][0]["id"] == json.dumps(body["citations"][0]["id"]).strip('"')
    usage = body["usage"]
    expected_cost = (usage["input_tokens"] * 150 + usage["output_tokens"] * 600) / 1e6
    assert usage["cost_usd"] == pytest.approx(expected_cost)


def test_pinned_version_is_served(
    model_client: TestClient, fake_model: tuple[str, FakeModelState]
) -> None:
    _, state = fake_model
    response = _ask(model_client, DIGITAL, version="1.0.0")
    assert response.headers["x-prompt-version"] == "1.0.0"
    sent = [r for r in state.requests if r.path == "/v1/chat/completions"][-1]
    assert sent.body["temperature"] == 0.0


@pytest.mark.parametrize(
    ("body", "status", "kind", "mentions"),
    [
        ({"prompt": "nope", "question": "q"}, 404, "prompt-not-found", "'nope'"),
        (
            {"prompt": "policy-qa", "question": "q", "version": "9.9.9"},
            404,
            "prompt-not-found",
            "9.9.9",
        ),
        ({"prompt": "policy-qa"}, 422, "invalid-request", "question"),
        ({"prompt": "policy-qa", "question": ""}, 422, "invalid-request", "question"),
        ({"prompt": "policy-qa", "question": "q", "colour": 1}, 422, "invalid-request", "colour"),
        ({"prompt": "Not A Label", "question": "q"}, 422, "invalid-request", "prompt"),
        (
            {"prompt": "policy-qa", "question": "q", "variables": {"tone": {"a": 1}}},
            422,
            "invalid-request",
            "variable 'tone' must be a string",
        ),
        (
            {"prompt": "policy-qa", "question": "q", "variables": {"tone": "rude"}},
            422,
            "invalid-variables",
            "tone",
        ),
        (
            {"prompt": "policy-qa", "question": "q", "variables": {"max_length": 5}},
            422,
            "invalid-variables",
            "max_length",
        ),
        (
            {"prompt": "policy-qa", "question": "q", "variables": {"persona": "x"}},
            422,
            "invalid-variables",
            "persona",
        ),
    ],
    ids=[
        "unknown-prompt",
        "unknown-version",
        "missing-question",
        "empty-question",
        "unknown-body-field",
        "bad-prompt-name",
        "object-variable",
        "enum",
        "minimum",
        "unknown-variable",
    ],
)
def test_bad_requests_get_problem_details(
    local_client: TestClient, body: dict[str, Any], status: int, kind: str, mentions: str
) -> None:
    response = local_client.post("/v1/answers", json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == f"urn:prompt-rollouts:problem:{kind}"
    assert problem["status"] == status and problem["instance"] == "/v1/answers"
    assert problem["request_id"] == response.headers["x-request-id"]
    assert mentions in json.dumps(problem)


def test_variable_problems_name_the_variable_and_rule(local_client: TestClient) -> None:
    response = _ask(local_client, "q", variables={"tone": "rude", "max_length": 1000, "x": 1})
    errors = {(e["variable"], e["rule"]) for e in response.json()["errors"]}
    assert errors == {("tone", "enum"), ("max_length", "maximum"), ("x", "unknown")}


def test_malformed_json_is_a_422_problem(local_client: TestClient) -> None:
    response = local_client.post(
        "/v1/answers", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


def test_body_over_the_limit_is_413_declared_or_streamed(local_client: TestClient) -> None:
    big = json.dumps({"prompt": "policy-qa", "question": "x" * 300_000}).encode()
    declared = local_client.post(
        "/v1/answers", content=big, headers={"content-type": "application/json"}
    )

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = local_client.post(
        "/v1/answers", content=chunks(), headers={"content-type": "application/json"}
    )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
        assert "262144-byte limit" in response.json()["detail"]


def test_request_id_is_honoured_only_when_well_formed(local_client: TestClient) -> None:
    good = local_client.post(
        "/v1/answers",
        json={"prompt": "policy-qa", "question": DIGITAL},
        headers={"x-request-id": "trace-0123456789"},
    )
    assert good.headers["x-request-id"] == "trace-0123456789" == good.json()["request_id"]
    bad = local_client.post(
        "/v1/answers",
        json={"prompt": "policy-qa", "question": DIGITAL},
        headers={"x-request-id": "short\t"},
    )
    assert bad.headers["x-request-id"] != "short\t" and len(bad.headers["x-request-id"]) == 32


def test_upstream_client_error_is_a_502_problem_after_one_call(
    model_client: TestClient, fake_model: tuple[str, FakeModelState]
) -> None:
    _, state = fake_model
    saved = state.models
    state.models = []  # the fake answers 404 "model does not exist"
    before = _chat_calls(state)
    try:
        response = _ask(model_client, DIGITAL)
    finally:
        state.models = saved
    assert response.status_code == 502
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("model-rejected")
    assert problem["outcome"] == "rejected"
    assert "upstream answered 404" in problem["detail"]
    assert "Traceback" not in response.text
    assert _chat_calls(state) == before + 1  # no retry, no fallback for a client error


def test_unreachable_model_is_a_503_problem() -> None:
    settings = build_settings(model_base_url="http://127.0.0.1:9/v1")
    with TestClient(create_app(settings)) as client:
        response = _ask(client, DIGITAL)
    assert response.status_code == 503
    assert response.json()["type"].endswith("model-unavailable")


def test_forbidden_phrase_in_a_model_answer_is_refused(
    tmp_path: Path, fake_model: tuple[str, FakeModelState]
) -> None:
    manifest = yaml.safe_load((ROOT / "prompts" / "policy-qa-1.1.0.yaml").read_text())
    manifest["spec"]["guardrails"]["forbiddenPhrases"] = ["business day"]
    (tmp_path / "policy-qa.yaml").write_text(yaml.safe_dump(manifest))
    url, _ = fake_model
    settings = build_settings(prompts_dir=tmp_path, model_base_url=f"{url}/v1")
    with TestClient(create_app(settings)) as client:
        body = _ask(client, "How long does standard delivery take?").json()
    assert body["outcome"] == "refused"
    assert body["answer"] == manifest["spec"]["guardrails"].get(
        "refusalAnswer", "I can't help with that."
    )
    assert body["citations"] == []


def test_invalid_manifest_stops_start_up_naming_file_and_field(tmp_path: Path) -> None:
    manifest = yaml.safe_load((ROOT / "prompts" / "policy-qa-1.1.0.yaml").read_text())
    manifest["spec"]["version"] = "1.1"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(manifest))
    app = create_app(build_settings(prompts_dir=tmp_path))
    with pytest.raises(ManifestError, match=r"broken\.yaml.*spec\.version"), TestClient(app):
        pass


def test_nan_cannot_slip_past_a_numeric_bound(local_client: TestClient) -> None:
    body = b'{"prompt": "policy-qa", "question": "q", "variables": {"max_length": NaN}}'
    response = local_client.post(
        "/v1/answers", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert ("max_length", "type") in {(e["variable"], e["rule"]) for e in response.json()["errors"]}
