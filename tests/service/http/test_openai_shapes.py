"""The façade's pure translations: model strings, requests, completions and errors."""

from __future__ import annotations

from typing import Any

import pytest

from api.v1alpha1 import VariableType
from service.answering.outcome import Outcome
from service.answering.schemas import AnswerResponse, Citation, Usage
from service.http.openai_request import (
    ChatCompletionRequest,
    ChatRequestError,
    build_answer_request,
    decide_metadata_value,
    decide_variable_types,
    parse_model,
)
from service.http.openai_shapes import build_completion, build_error, build_model_list

USER = {"role": "user", "content": "Where is my order?"}


def _request(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "prompts/faq", "messages": [USER]} | fields
    )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("prompts/faq", ("faq", None)),
        ("prompts/faq-bot@1.2.0", ("faq-bot", "1.2.0")),
        ("prompts/a@1.0.0-rc.1+build.5", ("a", "1.0.0-rc.1+build.5")),
    ],
    ids=["plain", "pinned", "pre-release"],
)
def test_model_strings_name_a_prompt_and_maybe_a_version(
    model: str, expected: tuple[str, str | None]
) -> None:
    assert parse_model(model) == expected


@pytest.mark.parametrize(
    "model",
    [
        "faq",
        "prompts/",
        "prompts/../faq",
        "prompts/faq/x",
        "prompts/faq@",
        "prompts/faq@v1.0.0",
        "prompts/faq@1.0",
        "prompts/-faq",
        "prompts/faq\n",
        "prompts/fa%2e",
        "PROMPTS/faq",
        "prompts/" + "a" * 64,
    ],
)
def test_anything_else_is_refused_naming_the_format(model: str) -> None:
    with pytest.raises(ChatRequestError) as caught:
        parse_model(model)
    assert caught.value.loc == ("model",)
    assert "prompts/<prompt>@<version>" in caught.value.message


def test_variables_win_over_metadata_and_history_is_one_line_per_turn() -> None:
    body = _request(
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
            USER,
        ],
        metadata={"tone": "formal", "name": "Ada"},
        variables={"tone": "friendly", "count": 2},
        user="u-1",
    )
    ask = build_answer_request(body)
    assert (ask.prompt, ask.version, ask.question, ask.user) == (
        "faq",
        None,
        "Where is my order?",
        "u-1",
    )
    assert ask.variables == {
        "tone": "friendly",
        "name": "Ada",
        "count": 2,
        "history": "user: Hi\nassistant: Hello!",
    }


S, INT, N, B = VariableType.STRING, VariableType.INTEGER, VariableType.NUMBER, VariableType.BOOLEAN


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("80", INT, 80),
        ("-3", INT, -3),
        ("8.0", INT, "8.0"),
        ("1" * 19, INT, "1" * 19),
        ("eighty", INT, "eighty"),
        ("2.5", N, 2.5),
        ("nan", N, "nan"),
        ("inf", N, "inf"),
        ("true", B, True),
        ("false", B, False),
        ("True", B, "True"),
        ("80", S, "80"),
        ("80", None, "80"),
    ],
)
def test_metadata_strings_convert_only_when_they_read_as_the_type(
    text: str, kind: VariableType | None, expected: object
) -> None:
    value = decide_metadata_value(text, kind)
    assert value == expected and type(value) is type(expected)


def test_metadata_is_typed_only_where_every_candidate_version_agrees() -> None:
    agreed = decide_variable_types([{"a": INT, "b": S, "c": INT}, {"a": INT, "b": INT}])
    assert agreed == {"a": INT}
    body = _request(metadata={"a": "1", "b": "2"})
    ask = build_answer_request(body, lambda prompt, version: agreed)
    assert ask.variables == {"a": 1, "b": "2"}
    assert decide_variable_types([]) == {}


def test_a_single_message_sends_no_history() -> None:
    assert "history" not in build_answer_request(_request()).variables


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"metadata": {"n": 1}}, ("metadata", "n")),
        ({"variables": {"tone": ["a"]}}, ("variables",)),
        ({"user": "u" * 257}, ("user",)),
        ({"messages": [{"role": "user", "content": None}]}, ("messages", 0, "content")),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            ("messages", 0, "content", 0, "text"),
        ),
        (
            {"messages": [{"role": "assistant", "content": "x", "tool_calls": [{}]}, USER]},
            ("messages", 0, "role"),
        ),
        (
            {"messages": [{"role": "user", "content": "a"}, USER], "variables": {"history": "x"}},
            ("messages",),
        ),
        ({"tool_choice": "required"}, ("tool_choice",)),
        ({"modalities": ["text", "audio"]}, ("modalities",)),
    ],
    ids=[
        "metadata-number",
        "variable-array",
        "long-user",
        "null-content",
        "text-part-without-text",
        "assistant-tool-call",
        "history-twice",
        "tool-choice",
        "audio",
    ],
)
def test_untranslatable_requests_name_the_field(
    fields: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    with pytest.raises(ChatRequestError) as caught:
        build_answer_request(_request(**fields))
    assert caught.value.loc == loc


def _answer(outcome: Outcome) -> AnswerResponse:
    return AnswerResponse(
        request_id="r1",
        prompt="faq",
        version="1.1.0",
        model="gpt-4o-mini",
        outcome=outcome,
        answer="Five days [1]",
        citations=[Citation(id="faq#0", source="faq.md", score=0.9)],
        usage=Usage(input_tokens=10, output_tokens=4, cost_usd=0.0),
        latency_ms=3.0,
    )


def test_a_completion_carries_the_resolved_model_usage_and_the_extension() -> None:
    completion = build_completion(_answer(Outcome.ANSWERED), created=1700000000)
    assert completion["model"] == "prompts/faq@1.1.0"
    assert completion["id"] == "chatcmpl-r1"
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
    assert completion["prompt_rollouts"] == {
        "version": "1.1.0",
        "outcome": "answered",
        "citations": [{"id": "faq#0", "source": "faq.md", "score": 0.9}],
        "request_id": "r1",
    }


def test_a_refusal_is_a_content_filter_finish_with_the_refusal_text() -> None:
    choice = build_completion(_answer(Outcome.REFUSED), created=0)["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["refusal"] == choice["message"]["content"]


@pytest.mark.parametrize(
    ("problem", "status", "expected"),
    [
        (
            {"type": "urn:prompt-rollouts:problem:prompt-not-found", "detail": "no such"},
            404,
            {
                "message": "no such",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            },
        ),
        (
            {
                "type": "urn:prompt-rollouts:problem:invalid-variables",
                "detail": "tone: bad",
                "errors": [{"variable": "tone", "rule": "enum", "message": "tone bad"}],
            },
            422,
            {
                "message": "tone: bad",
                "type": "invalid_request_error",
                "param": "variables.tone",
                "code": "invalid_variables",
            },
        ),
        (
            {"type": "urn:prompt-rollouts:problem:unauthenticated", "detail": "no key"},
            401,
            {
                "message": "no key",
                "type": "authentication_error",
                "param": None,
                "code": "invalid_api_key",
            },
        ),
        (
            {"type": "urn:prompt-rollouts:problem:rate-limited", "title": "Rate limited"},
            429,
            {
                "message": "Rate limited",
                "type": "rate_limit_error",
                "param": None,
                "code": "rate_limited",
            },
        ),
        (
            {"type": "urn:prompt-rollouts:problem:model-unavailable", "detail": "down"},
            503,
            {"message": "down", "type": "server_error", "param": None, "code": "model_unavailable"},
        ),
        (
            {},
            500,
            {
                "message": "the request failed",
                "type": "server_error",
                "param": None,
                "code": "error",
            },
        ),
    ],
    ids=["not-found", "variables", "unauthenticated", "rate-limited", "unavailable", "empty"],
)
def test_problems_become_openai_errors(
    problem: dict[str, Any], status: int, expected: dict[str, Any]
) -> None:
    assert build_error(problem, status) == {"error": expected}


def test_the_model_list_has_one_entry_per_prompt_sorted() -> None:
    listed = build_model_list([("b", "x@e"), ("a", "y@e"), ("b", "z@e")])
    assert [m["id"] for m in listed["data"]] == ["prompts/a", "prompts/b"]
    assert listed["data"][1]["owned_by"] == "x@e"
    assert listed["object"] == "list"
