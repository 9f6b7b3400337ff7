"""The plain-ASGI ``POST /v1/answers``: which requests it takes and which exception handler
it picks (pure). Its responses against the route's: routers/test_answer_fast_path_api.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.exceptions import HTTPException

from service.answering.schemas import AnswerRequest
from service.errors import PromptNotFoundError, ServiceError, UpstreamRejectedError
from service.http.answer_fast_path import decide_plain_answer, find_exception_handler

JSON = (b"content-type", b"application/json")
ASK: dict[str, Any] = {
    "prompt": "policy-qa",
    "question": "Can I refund a digital item after two weeks?",
    "variables": {"tone": "formal"},
}
PLAIN = json.dumps(ASK).encode()


@pytest.mark.parametrize(
    ("headers", "body", "taken"),
    [
        ([JSON], PLAIN, True),
        ([(b"content-type", b"application/json; charset=utf-8")], PLAIN, True),
        ([(b"content-type", b"Application/JSON")], PLAIN, True),
        ([(b"host", b"x"), JSON, (b"authorization", b"Bearer k")], PLAIN, True),
        ([], PLAIN, False),
        ([(b"content-type", b"text/plain")], PLAIN, False),
        ([(b"content-type", b"application/json; charset=latin-1")], PLAIN, False),
        ([(b"content-type", b"application/merge-patch+json")], PLAIN, False),
        ([JSON, JSON], PLAIN, False),
        ([JSON, (b"x-prompt-version", b"1.1.0")], PLAIN, False),
        ([JSON, (b"x-no-shadow", b"true")], PLAIN, False),
        ([JSON, (b"idempotency-key", b"k-1")], PLAIN, False),
        ([JSON], b"", False),
        ([JSON], b"{", False),
        ([JSON], b"\xff\xfe{}", False),
        ([JSON], b"[]", False),
        ([JSON], b"[" * 100_000 + b"]" * 100_000, False),
        ([JSON], json.dumps({**ASK, "stream": True}).encode(), False),
        ([JSON], json.dumps({**ASK, "extra": 1}).encode(), False),
        ([JSON], json.dumps({**ASK, "question": " \u200b "}).encode(), False),
        ([JSON], json.dumps({**ASK, "variables": {"tone": ["a"]}}).encode(), False),
        ([JSON], json.dumps({**ASK, "version": "latest"}).encode(), False),
    ],
    ids=[
        "plain",
        "charset-utf-8",
        "content-type-case",
        "other-headers",
        "no-content-type",
        "not-json",
        "other-charset",
        "json-suffix-type",
        "two-content-types",
        "pinned-header",
        "no-shadow-header",
        "idempotency-key",
        "empty-body",
        "broken-json",
        "not-utf-8",
        "array",
        "deep-nesting",
        "stream",
        "unknown-field",
        "invisible-question",
        "object-variable",
        "bad-version",
    ],
)
def test_only_plain_requests_are_taken(
    headers: list[tuple[bytes, bytes]], body: bytes, taken: bool
) -> None:
    decided = decide_plain_answer(headers, body)
    assert (decided is not None) is taken
    if decided is not None:
        assert decided == AnswerRequest.model_validate_json(body)


async def _handler(request: Any, error: Exception) -> Any:
    return error


@pytest.mark.parametrize(
    ("handlers", "error", "expected"),
    [
        ({PromptNotFoundError: "own"}, PromptNotFoundError("x"), "own"),
        ({ServiceError: "base"}, PromptNotFoundError("x"), "base"),
        ({ServiceError: "base", PromptNotFoundError: "own"}, PromptNotFoundError("x"), "own"),
        ({ServiceError: "base"}, UpstreamRejectedError("x"), "base"),
        ({ServiceError: "base"}, KeyError("x"), None),
        ({Exception: "server-error", 500: "status"}, KeyError("x"), None),
        ({404: "status", HTTPException: "class"}, HTTPException(404), "status"),
        ({409: "status", HTTPException: "class"}, HTTPException(404), "class"),
    ],
    ids=[
        "exact",
        "base-class",
        "nearest",
        "sibling",
        "unhandled",
        "exception-is-outer",
        "status-first",
        "other-status",
    ],
)
def test_exception_handlers_are_picked_as_starlette_picks_them(
    handlers: dict[Any, Any], error: Exception, expected: str | None
) -> None:
    found: object = find_exception_handler(handlers, error)
    assert found == expected
