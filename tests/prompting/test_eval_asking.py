"""An eval case as a /v1/answers request, and its response as an answer (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from prompting.evals.asking import build_answer_body, read_answer, read_no_response
from prompting.evals.evalset import EvalCase


def test_the_body_pins_the_version_and_carries_the_user_only_when_set() -> None:
    case = EvalCase.model_validate({"id": "a", "question": "Q?", "expect": {"contains_all": ["x"]}})
    assert build_answer_body("faq", case, "1.1.0") == {
        "prompt": "faq", "question": "Q?", "variables": {}, "version": "1.1.0"
    }  # fmt: skip
    with_user = case.model_copy(update={"user": "u-1"})
    assert build_answer_body("faq", with_user, "1.1.0")["user"] == "u-1"


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (200, '{"answer": "yes", "outcome": "answered"}', {"answer": "yes", "outcome": "answered"}),
        (
            503,
            '{"title": "Model unavailable", "detail": "all failed", "outcome": "unavailable"}',
            {"status": 503, "title": "Model unavailable", "detail": "all failed"},
        ),
        (502, "<html>bad gateway</html>", {"status": 502, "detail": "<html>bad gateway</html>"}),
        (200, "[1, 2]", {"status": 200, "detail": "[1, 2]"}),
        (500, "x" * 500, {"status": 500, "detail": "x" * 200}),
    ],
    ids=["answer", "problem-is-no-answer", "not-json", "not-an-object", "truncated"],
)
def test_a_response_is_an_answer_or_a_problem(
    status: int, text: str, expected: dict[str, Any]
) -> None:
    assert read_answer(status, text) == expected


def test_no_response_names_the_error() -> None:
    assert read_no_response(ConnectionError("refused")) == {
        "status": "no response", "title": "ConnectionError", "detail": "refused"
    }  # fmt: skip
