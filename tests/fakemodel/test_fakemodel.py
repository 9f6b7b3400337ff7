"""The fake OpenAI-compatible model: pure answer/embedding rules, then its HTTP surface."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.types import Scope

from fakemodel.answers import (
    NOT_COVERED,
    build_answer,
    build_embedding,
    count_tokens,
    parse_context,
)
from fakemodel.app import FakeModelState, create_fake_model_app
from tests.support.servers import serve_in_thread

PROMPT = """INSTRUCTIONS:
- Cite the passages you rely on by their [n] markers, for example [1] or [2][3].

CONTEXT:
[1] (travel.md) Taxis are reimbursed up to 50 EUR. Keep the receipt.
[2] (leave.md) Employees get 25 days of leave!
[3] Passage without a source.

QUESTION:
Can I expense a taxi?"""


def _messages(user: str, system: str = "You are a policy expert.") -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


# --- pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        pytest.param(
            PROMPT,
            [
                (1, "Taxis are reimbursed up to 50 EUR. Keep the receipt."),
                (2, "Employees get 25 days of leave!"),
                (3, "Passage without a source."),
            ],
            id="rendered-context",
        ),
        pytest.param("CONTEXT:\n\nQUESTION:\nWhy?", [], id="empty-context"),
        pytest.param("  [12]   (a b.md)   Indented.  ", [(12, "Indented.")], id="spacing"),
        pytest.param("- see [1] or [2]\nsee [3] here", [], id="markers-inside-lines"),
    ],
)
def test_parse_context(prompt: str, expected: list[tuple[int, str]]) -> None:
    assert parse_context(prompt) == expected


@pytest.mark.parametrize(
    ("messages", "max_tokens", "expected"),
    [
        pytest.param(
            _messages(PROMPT), 256, "Taxis are reimbursed up to 50 EUR. [1]", id="first-sentence"
        ),
        pytest.param(_messages(PROMPT), 3, "Taxis are reimbursed [1]", id="max-tokens-cuts"),
        pytest.param(_messages(PROMPT), 0, "Taxis [1]", id="at-least-one-word"),
        pytest.param(
            _messages("QUESTION:\nCan I expense a taxi?"), 256, NOT_COVERED, id="no-context"
        ),
        pytest.param(
            [{"role": "system", "content": "[4] (x.md) From the system message. More."}],
            256,
            "From the system message. [4]",
            id="context-in-any-message",
        ),
        pytest.param([{"role": "user"}], 256, NOT_COVERED, id="message-without-content"),
    ],
)
def test_build_answer(messages: list[dict[str, str]], max_tokens: int, expected: str) -> None:
    assert build_answer(messages, max_tokens) == expected


@pytest.mark.parametrize("max_tokens", [1, 2, 5, 8, 100])
def test_build_answer_never_exceeds_max_tokens_words(max_tokens: int) -> None:
    answer = build_answer(_messages(PROMPT), max_tokens)

    words, citation = answer.rsplit(" ", 1)
    assert citation == "[1]"
    assert 1 <= len(words.split()) <= max_tokens
    assert "Taxis are reimbursed up to 50 EUR.".startswith(words)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", 0, id="empty"),
        pytest.param("a", 1, id="one-char"),
        pytest.param("abcd", 1, id="four-chars"),
        pytest.param("abcde", 2, id="five-chars"),
    ],
)
def test_count_tokens(text: str, expected: int) -> None:
    assert count_tokens(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("taxi", id="one-word"),
        pytest.param("Taxis are reimbursed up to 50 EUR.", id="sentence"),
        pytest.param("leave " * 40, id="repeated-word"),
    ],
)
@pytest.mark.parametrize("dimension", [8, 64, 384])
def test_build_embedding_is_a_deterministic_unit_vector(text: str, dimension: int) -> None:
    vector = build_embedding(text, dimension)

    assert len(vector) == dimension
    assert math.isclose(math.fsum(v * v for v in vector), 1.0)
    assert build_embedding(text, dimension) == vector


def test_build_embedding_ignores_case_and_punctuation() -> None:
    assert build_embedding("Taxi, RECEIPT!", 64) == build_embedding("taxi receipt", 64)


@pytest.mark.parametrize(
    ("anchor", "near", "far"),
    [
        pytest.param(
            "taxi receipts are reimbursed",
            "are taxi receipts reimbursed quickly",
            "employees get annual leave days",
            id="question-vs-policy",
        ),
        pytest.param("parental leave", "leave for parents", "laptop stipend", id="one-shared"),
    ],
)
def test_build_embedding_shared_words_are_closer(anchor: str, near: str, far: str) -> None:
    a, b, c = (build_embedding(text, 64) for text in (anchor, near, far))

    assert _cosine(a, b) > _cosine(a, c)
    assert math.isclose(_cosine(a, a), 1.0)


# --- HTTP ------------------------------------------------------------------------------------


@pytest.fixture
def state() -> FakeModelState:
    return FakeModelState()


@pytest.fixture
def client(state: FakeModelState) -> Iterator[httpx.Client]:
    with (
        serve_in_thread(create_fake_model_app(state)) as base_url,
        httpx.Client(base_url=base_url, timeout=10) as http,
    ):
        yield http


@pytest.mark.integration
def test_chat_completion_has_openai_shape(client: httpx.Client) -> None:
    response = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": _messages(PROMPT), "max_tokens": 50},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "gpt-4o-mini"
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"] == {
        "role": "assistant",
        "content": build_answer(_messages(PROMPT), 50),
    }
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("user", "expected"),
    [
        pytest.param("CONTEXT:\n\nQUESTION:\nWhy?", NOT_COVERED, id="empty-context-block"),
        pytest.param("TICKET:\nMy parcel is late.", "My parcel is late.", id="no-context-echoes"),
    ],
)
def test_chat_completion_answers_by_context_or_echo(
    client: httpx.Client, user: str, expected: str
) -> None:
    response = client.post(
        "/v1/chat/completions", json={"model": "gpt-4.1-nano", "messages": _messages(user)}
    )

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == expected


def _assert_openai_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert isinstance(error["message"], str)
    assert error["message"]
    assert "code" in error


@pytest.mark.integration
def test_chat_completion_unknown_model_is_a_404(client: httpx.Client) -> None:
    response = client.post(
        "/v1/chat/completions", json={"model": "gpt-9", "messages": _messages("hi")}
    )

    _assert_openai_error(response, 404)
    assert "gpt-9" in response.json()["error"]["message"]


@pytest.mark.integration
@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b'{"messages": []}', id="no-model"),
        pytest.param(b'{"model": "gpt-4o-mini"}', id="no-messages"),
        pytest.param(b'[{"model": "gpt-4o-mini"}]', id="array-body"),
        pytest.param(b'{"model": "gpt-4o-mini", "messages": "hi"}', id="messages-not-a-list"),
        pytest.param(b'{"model": "gpt-4o-mini", "messages": ["hi"]}', id="message-not-an-object"),
        pytest.param(
            b'{"model": "gpt-4o-mini", "messages": [], "max_tokens": "many"}',
            id="max-tokens-not-a-number",
        ),
    ],
)
def test_chat_completion_malformed_body_is_a_400(
    client: httpx.Client, state: FakeModelState, content: bytes
) -> None:
    response = client.post(
        "/v1/chat/completions", content=content, headers={"Content-Type": "application/json"}
    )

    _assert_openai_error(response, 400)
    assert state.requests == []


@pytest.mark.integration
def test_models_lists_the_state_models(client: httpx.Client, state: FakeModelState) -> None:
    response = client.get("/v1/models")

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == state.models
    assert {m["object"] for m in body["data"]} == {"model"}


@pytest.mark.integration
@pytest.mark.parametrize(
    "texts",
    [
        pytest.param("taxi receipts", id="one-string"),
        pytest.param(["taxi receipts", "annual leave"], id="list"),
    ],
)
def test_embeddings(client: httpx.Client, state: FakeModelState, texts: str | list[str]) -> None:
    response = client.post("/v1/embeddings", json={"model": "fake-embedding", "input": texts})

    assert response.status_code == 200
    body = response.json()
    expected = [texts] if isinstance(texts, str) else texts
    assert body["object"] == "list"
    assert [item["index"] for item in body["data"]] == list(range(len(expected)))
    assert [item["embedding"] for item in body["data"]] == [
        build_embedding(text, state.embedding_dimension) for text in expected
    ]
    assert body["usage"]["prompt_tokens"] > 0
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"]


@pytest.mark.integration
@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"nope", id="not-json"),
        pytest.param(b'{"model": "fake-embedding"}', id="no-input"),
        pytest.param(b'{"input": 5}', id="input-not-a-string-or-list"),
    ],
)
def test_embeddings_malformed_body_is_a_400(client: httpx.Client, content: bytes) -> None:
    response = client.post(
        "/v1/embeddings", content=content, headers={"Content-Type": "application/json"}
    )

    _assert_openai_error(response, 400)


@pytest.mark.integration
def test_admin_requests_records_headers_and_can_be_cleared(client: httpx.Client) -> None:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": _messages(PROMPT)}
    client.post(
        "/v1/chat/completions",
        json=body,
        headers={"Authorization": "Bearer sk-test", "Idempotency-Key": "req-42"},
    )

    [recorded] = client.get("/admin/requests").json()
    assert (recorded["method"], recorded["path"]) == ("POST", "/v1/chat/completions")
    assert recorded["headers"]["authorization"] == "Bearer sk-test"
    assert recorded["headers"]["idempotency-key"] == "req-42"
    assert recorded["body"] == body

    cleared = client.delete("/admin/requests")
    assert cleared.status_code == 204
    assert client.get("/admin/requests").json() == []


def test_state_keeps_only_the_latest_requests() -> None:
    state = FakeModelState(max_recorded=2)
    for path in ("/a", "/b", "/c"):
        scope: Scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "headers": [],
            "query_string": b"",
        }
        state.record(Request(scope), None)

    assert [r.path for r in state.requests] == ["/b", "/c"]
