"""One eval case as a ``POST /v1/answers`` request, and its response as an answer (pure).

Shared by ``promptctl eval`` (:mod:`promptctl.evals.runner`) and the controller's eval gate
(:mod:`controller.eval_runner`); each sends the request with its own HTTP client.
"""

from __future__ import annotations

import json
from typing import Any

from prompting.evals.evalset import EvalCase

__all__ = ["build_answer_body", "read_answer", "read_no_response"]


def build_answer_body(prompt: str, case: EvalCase, version: str) -> dict[str, Any]:
    """The request body asking `case` of `prompt`, pinned to `version`."""
    body: dict[str, Any] = {
        "prompt": prompt,
        "question": case.question,
        "variables": case.variables,
        "version": version,
    }
    if case.user is not None:
        body["user"] = case.user
    return body


def read_answer(status: int, text: str) -> dict[str, Any]:
    """The answer body, or a problem body (`status`, `title`, `detail`) for an error status
    or a body that is not a JSON object.

    A problem body may carry an `outcome` (503 "unavailable"): it is still no answer.
    """
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return {"status": status, "detail": text[:200]}
    if status >= 400:
        return {"status": status, "title": data.get("title"), "detail": data.get("detail")}
    return data


def read_no_response(error: Exception) -> dict[str, Any]:
    """The problem body of a request that got no response."""
    return {"status": "no response", "title": type(error).__name__, "detail": str(error)}
