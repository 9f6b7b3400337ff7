"""OpenAI wire shapes of the façade's answers, model lists and errors (pure).

- :func:`build_completion`: an ``AnswerResponse`` as a ``chat.completion`` object, with the
  extension ``prompt_rollouts: {version, outcome, citations, request_id}``;
- :func:`build_model_list`: the servable prompts as an OpenAI model list;
- :func:`build_error`: a problem details object (RFC 9457, what every other endpoint
  answers) as an OpenAI error object ``{"error": {message, type, param, code}}``. The HTTP
  status and headers (``Retry-After``) stay as they are, so the SDK's retries behave.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.answering.outcome import Outcome
from service.answering.schemas import AnswerResponse

__all__ = [
    "MODEL_PREFIX",
    "build_completion",
    "build_error",
    "build_model_id",
    "build_model_list",
    "decide_error_type",
]

MODEL_PREFIX = "prompts/"

#: HTTP status → OpenAI error ``type``; any other 4xx (404 included, as OpenAI answers an
#: unknown model) is ``invalid_request_error``, any 5xx ``server_error``.
_ERROR_TYPES: dict[int, str] = {
    401: "authentication_error",
    403: "permission_error",
    409: "conflict_error",
    429: "rate_limit_error",
}
#: Problem slugs whose OpenAI ``code`` is the one the OpenAI API uses for the same case.
_CODES: dict[str, str] = {
    "prompt-not-found": "model_not_found",
    "unauthenticated": "invalid_api_key",
}


def build_model_id(prompt: str, version: str | None = None) -> str:
    """``prompts/<prompt>`` or ``prompts/<prompt>@<version>``."""
    return MODEL_PREFIX + prompt + (f"@{version}" if version else "")


def build_completion(answer: AnswerResponse, created: int) -> dict[str, Any]:
    """The ``chat.completion`` object of an answer; `created` is Unix seconds."""
    refused = answer.outcome is Outcome.REFUSED
    return {
        "id": f"chatcmpl-{answer.request_id}",
        "object": "chat.completion",
        "created": created,
        "model": build_model_id(answer.prompt, answer.version),
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": answer.answer,
                    "refusal": answer.answer if refused else None,
                },
                "finish_reason": "content_filter" if refused else "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": answer.usage.input_tokens,
            "completion_tokens": answer.usage.output_tokens,
            "total_tokens": answer.usage.input_tokens + answer.usage.output_tokens,
        },
        "system_fingerprint": None,
        "prompt_rollouts": {
            "version": answer.version,
            "outcome": answer.outcome.value,
            "citations": [citation.model_dump() for citation in answer.citations],
            "request_id": answer.request_id,
        },
    }


def build_model_list(prompts: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The OpenAI model list of `(prompt, owner)` pairs, one entry per prompt, sorted."""
    owners: dict[str, str] = {}
    for prompt, owner in prompts:
        owners.setdefault(prompt, owner)
    return {
        "object": "list",
        "data": [
            {"id": build_model_id(name), "object": "model", "created": 0, "owned_by": owners[name]}
            for name in sorted(owners)
        ],
    }


def decide_error_type(status: int) -> str:
    """The OpenAI error ``type`` of an HTTP status."""
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "server_error" if status >= 500 else "invalid_request_error"


def _param(problem: Mapping[str, Any]) -> str | None:
    """The request field a problem is about, if it names one."""
    errors = problem.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        first = errors[0]
        if isinstance(first.get("field"), str):
            return str(first["field"])
        if isinstance(first.get("variable"), str):
            return f"variables.{first['variable']}"
    if str(problem.get("type", "")).endswith(":prompt-not-found"):
        return "model"
    return None


def build_error(problem: Mapping[str, Any], status: int) -> dict[str, Any]:
    """The OpenAI error object of a problem details object."""
    slug = str(problem.get("type", "")).rpartition(":")[2] or "error"
    detail = problem.get("detail") or problem.get("title") or "the request failed"
    return {
        "error": {
            "message": str(detail),
            "type": decide_error_type(status),
            "param": _param(problem),
            "code": _CODES.get(slug, slug.replace("-", "_")),
        }
    }
