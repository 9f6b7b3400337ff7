"""Checking answers against an output contract (pure): parse, fences, bounds, schema, repair."""

from __future__ import annotations

import json
from typing import Any

import pytest

from prompting.rendering import Message
from service.answering.output_contract import (
    MAX_OUTPUT_CHARS,
    MAX_OUTPUT_DEPTH,
    MAX_REPAIR_ECHO_CHARS,
    REPAIR_INSTRUCTION,
    assess_output,
    build_repair_messages,
    extract_json_text,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "note"],
    "additionalProperties": False,
    "properties": {
        "status": {"enum": ["open", "closed"]},
        "note": {"type": "string", "maxLength": 40},
        "items": {"type": "array", "items": {"type": "integer"}},
    },
}
VALID = {"status": "open", "note": "ok"}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"status": "open", "note": "ok"}', id="bare"),
        pytest.param('  \n{"status":"open","note":"ok"}\n', id="whitespace"),
        pytest.param('```json\n{"status": "open", "note": "ok"}\n```', id="fenced-json"),
        pytest.param('```\n{"status": "open", "note": "ok"}\n```', id="fenced-plain"),
        pytest.param(
            'Here it is:\n```json\n{"status": "open", "note": "ok"}\n```\nAnything else?',
            id="fenced-with-prose",
        ),
    ],
)
def test_valid_json_is_accepted_bare_or_fenced(text: str) -> None:
    check = assess_output(text, SCHEMA)

    assert check.valid, check.problem
    assert check.value == VALID
    assert json.loads(check.text) == VALID


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("The status is open.", "not valid JSON (line 1, column 1", id="prose"),
        pytest.param('{"status": "open", "note": "o', "not valid JSON", id="truncated"),
        pytest.param('{"status": NaN, "note": "x"}', "NaN, Infinity", id="nan"),
        pytest.param('{"status": 1e999, "note": "x"}', "out of range", id="overflow"),
        pytest.param('{"status": "open"}', "$ 'note' is a required property", id="required"),
        pytest.param(
            '{"status": "maybe", "note": "x"}', '$.status must be one of ["open"', id="enum"
        ),
        pytest.param('{"status": "open", "note": 3}', '$.note must be of type "string"', id="type"),
        pytest.param(
            '{"status": "open", "note": "x", "items": [1, "two"]}',
            '$.items[1] must be of type "integer"',
            id="array-item",
        ),
        pytest.param(
            '{"status": "open", "note": "x", "extra": 1}',
            "$ has properties the schema does not allow",
            id="additional",
        ),
        pytest.param('["open"]', '$ must be of type "object"', id="wrong-root"),
    ],
)
def test_invalid_answers_are_named(text: str, problem: str) -> None:
    check = assess_output(text, SCHEMA)

    assert not check.valid
    assert check.value is None and check.text == ""
    assert check.problem is not None and problem in check.problem


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"status": "jane.doe@example.com", "note": "x"}', id="enum"),
        pytest.param(
            '{"status": "open", "note": "please call jane on +44 20 7946 0958 about this ticket"}',
            id="len",
        ),
        pytest.param('{"status": "open", "note": "x", "jane.doe@example.com": 1}', id="key"),
        pytest.param(
            '{"status": "open", "note": "x", "items": ["4111 1111 1111 1111"]}', id="card"
        ),
    ],
)
def test_a_problem_never_carries_the_model_values(text: str) -> None:
    check = assess_output(text, SCHEMA)

    assert check.problem is not None
    for secret in ("jane", "example.com", "7946", "4111"):
        assert secret not in check.problem


def test_a_10_mb_answer_is_refused_before_it_is_parsed() -> None:
    huge = json.dumps({"status": "open", "note": "x" * (10 * 1024 * 1024)})

    check = assess_output(huge, SCHEMA)

    assert check.problem == f"the answer is longer than {MAX_OUTPUT_CHARS} characters"


@pytest.mark.parametrize(
    ("depth", "problem"),
    [
        pytest.param(MAX_OUTPUT_DEPTH + 1, f"more than {MAX_OUTPUT_DEPTH}", id="past-the-bound"),
        pytest.param(100_000, f"deeper than {MAX_OUTPUT_DEPTH}", id="past-the-parser"),
    ],
)
def test_deeply_nested_json_is_a_problem_not_a_crash(depth: int, problem: str) -> None:
    text = "[" * depth + "]" * depth

    check = assess_output(text, {"type": "array"})

    assert check.problem is not None and problem in check.problem


def test_json_just_inside_the_depth_bound_is_validated() -> None:
    text = "[" * MAX_OUTPUT_DEPTH + "]" * MAX_OUTPUT_DEPTH
    assert assess_output(text, {"type": "array"}).valid


def test_a_fence_is_only_taken_when_the_text_is_not_json_itself() -> None:
    text = '{"note": "a ```json\\n{}\\n``` example"}'
    assert extract_json_text(text) == text


def test_repair_messages_carry_the_conversation_the_answer_and_the_problem() -> None:
    messages = [Message("system", "Reply in JSON."), Message("user", "Status?")]
    answer = "x" * (MAX_REPAIR_ECHO_CHARS + 500)

    repair = build_repair_messages(messages, answer, "$.status must be one of", SCHEMA)

    assert repair[:2] == messages
    assert repair[2].role == "assistant"
    assert repair[2].content.startswith("x" * MAX_REPAIR_ECHO_CHARS)
    assert len(repair[2].content) < MAX_REPAIR_ECHO_CHARS + 100
    assert repair[3].role == "user"
    assert repair[3].content.startswith(REPAIR_INSTRUCTION)
    assert "$.status must be one of" in repair[3].content
    assert json.dumps(SCHEMA, sort_keys=True) in repair[3].content
