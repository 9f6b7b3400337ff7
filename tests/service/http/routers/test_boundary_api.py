"""What a careless or hostile caller sends to POST /v1/answers, and the problem it gets back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from service.answering.schemas import has_visible_text
from service.app import create_app
from service.http.problems import MAX_LISTED_PROMPTS, assess_body_error, is_json_media_type

from .conftest import ROOT, build_settings

PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}
#: The members every problem carries (RFC 9457 plus the request id).
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "request_id"}


def _problem(response: Any, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert set(problem) >= PROBLEM_KEYS
    assert problem["type"] == f"urn:prompt-rollouts:problem:{kind}"
    assert problem["request_id"] == response.headers["x-request-id"]
    return problem


@pytest.mark.parametrize(
    "question",
    [
        " ",
        "\t\n  \r\n",
        "\u200b",
        "\u200b\u200c\u200d\u2060\ufeff",
        " \u00a0\u3000 ",
        "\u2800\u3164",
    ],
    ids=["space", "mixed-whitespace", "zwsp", "zero-width-mix", "unicode-spaces", "blank-letters"],
)
def test_invisible_questions_are_422_naming_the_field(
    local_client: TestClient, question: str
) -> None:
    response = local_client.post("/v1/answers", json={"prompt": "policy-qa", "question": question})
    problem = _problem(response, 422, "invalid-request")
    assert [e["field"] for e in problem["errors"]] == ["question"]
    assert "visible text" in problem["detail"]


@pytest.mark.parametrize(
    ("text", "visible"),
    [("a", True), (" \u200bé ", True), ("\u200b", False), ("", False), ("\x00\x1f", False)],
    ids=["letter", "accent-among-blanks", "zwsp", "empty", "controls"],
)
def test_visible_text_table(text: str, visible: bool) -> None:
    assert has_visible_text(text) is visible


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}],
    ids=["missing", "text-plain", "form"],
)
def test_non_json_content_type_gets_a_sentence_saying_to_send_json(
    local_client: TestClient, headers: dict[str, str]
) -> None:
    body = json.dumps({"prompt": "policy-qa", "question": "How long does delivery take?"})
    response = local_client.post("/v1/answers", content=body, headers=headers)
    problem = _problem(response, 415, "unsupported-media-type")
    assert "send the request body as JSON" in problem["detail"]
    assert "`content-type: application/json`" in problem["detail"]
    assert (headers.get("content-type") or "none") in problem["detail"]


@pytest.mark.parametrize(
    ("value", "json_like"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/merge-patch+json", True),
        ("text/json", False),
        (None, False),
        ("", False),
    ],
)
def test_json_media_types(value: str | None, json_like: bool) -> None:
    assert is_json_media_type(value) is json_like


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"prompt": "policy-qa", "question": "caf\xe9?"}', "not valid UTF-8"),
        (b'{"prompt": "policy-qa", "question": "q", "x": ' + b"[" * 30000 + b"]" * 30000 + b"}",
         "nests"),
        (b'{"prompt": "policy-qa", "question": "q", "variables": {"n": ' + b"9" * 5000 + b"}}",
         "too many digits"),
        (b"{not json", "JSON decode error"),
        (b"[1, 2]", "valid dictionary"),
        (b'"just a string"', "valid dictionary"),
        (b"null", "valid dictionary"),
    ],
    ids=["invalid-utf8", "deep-nesting", "huge-integer", "syntax", "array", "string", "null"],
)  # fmt: skip
def test_malformed_bodies_are_422_invalid_request(
    local_client: TestClient, body: bytes, says: str
) -> None:
    response = local_client.post("/v1/answers", content=body, headers=JSON)
    problem = _problem(response, 422, "invalid-request")
    assert says in problem["detail"]
    assert problem["errors"] and all("field" in e for e in problem["errors"])


def test_body_error_sentences() -> None:
    assert "UTF-8" in assess_body_error(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"))
    assert "nests" in assess_body_error(RecursionError())
    assert "digits" in assess_body_error(ValueError("Exceeds the limit (4300 digits)"))
    assert "could not be parsed" in assess_body_error(None)


def test_unknown_prompt_404_lists_the_prompts_that_exist(local_client: TestClient) -> None:
    response = local_client.post("/v1/answers", json={"prompt": "nope", "question": "hi"})
    problem = _problem(response, 404, "prompt-not-found")
    shipped = ["faq-bot", "order-status", "policy-qa", "ticket-summarizer"]  # prompts/, sorted
    assert problem["prompts"] == shipped
    assert problem["detail"].endswith(f"prompts served here: {', '.join(shipped)}")


@pytest.fixture(scope="module")
def many_prompts_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app serving 25 copies of policy-qa under other prompt names."""
    folder = tmp_path_factory.mktemp("prompts")
    source = yaml.safe_load((ROOT / "prompts" / "policy-qa-1.1.0.yaml").read_text())
    for index in range(25):
        manifest = json.loads(json.dumps(source))
        manifest["metadata"]["name"] = f"p{index:02d}-1-1-0"
        manifest["spec"]["prompt"] = f"p{index:02d}"
        (folder / f"p{index:02d}.yaml").write_text(yaml.safe_dump(manifest))
    settings = build_settings(prompts_dir=folder, corpus_dir=None)
    with TestClient(create_app(settings)) as client:
        yield client


def test_prompt_list_in_a_404_is_bounded(many_prompts_client: TestClient) -> None:
    response = many_prompts_client.post("/v1/answers", json={"prompt": "nope", "question": "hi"})
    problem = _problem(response, 404, "prompt-not-found")
    assert problem["prompts"] == [f"p{i:02d}" for i in range(MAX_LISTED_PROMPTS)]
    assert problem["detail"].endswith(f"and {25 - MAX_LISTED_PROMPTS} more")


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("a", True),
        ("A.b_c-1", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        ("has space", False),
        ("semi;colon", False),
        ("ünïcode", False),
        ("line\\nbreak", False),
    ],
    ids=["one-char", "charset", "128", "129", "empty", "space", "semicolon", "unicode", "escape"],
)
def test_request_id_is_kept_only_when_it_matches_the_safe_pattern(
    local_client: TestClient, incoming: str, kept: bool
) -> None:
    response = local_client.get("/healthz", headers={b"x-request-id": incoming.encode()})
    assert (response.headers["x-request-id"] == incoming) is kept
    if not kept:
        assert len(response.headers["x-request-id"]) == 32


def test_413_has_the_problem_shape_of_every_other_error(local_client: TestClient) -> None:
    limit = build_settings().max_body_bytes
    big = json.dumps({"prompt": "policy-qa", "question": "x" * (limit + 1)}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    for content in (big, chunks()):
        response = local_client.post("/v1/answers", content=content, headers=JSON)
        problem = _problem(response, 413, "body-too-large")
        assert set(problem) == PROBLEM_KEYS
        assert problem["instance"] == "/v1/answers" and problem["title"]
        assert response.headers["connection"] == "close"
