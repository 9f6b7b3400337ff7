"""Every error leaves the service as ``application/problem+json`` (RFC 9457), mapped here."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.v1alpha1.messages import describe_error
from service.answering.outcome import outcome_of_error
from service.errors import (
    AnswerableError,
    DeadlineExceededError,
    EmbeddingError,
    FeedbackNotFoundError,
    FeedbackUnavailableError,
    IdempotencyKeyInFlightError,
    IdempotencyKeyInvalidError,
    IdempotencyKeyReusedError,
    IdempotencyUnavailableError,
    InvalidOutputError,
    ModelError,
    PromptingError,
    PromptNotFoundError,
    RateLimitedError,
    RetrievalError,
    ServiceError,
    TemplateError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
    VariableError,
)
from service.llm.resilience.policy import format_retry_after

__all__ = [
    "MAX_LISTED_PROMPTS",
    "PROBLEM_MEDIA_TYPE",
    "assess_body_error",
    "build_problem",
    "install_problem_handlers",
    "is_json_media_type",
    "problem_response",
    "status_of",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:prompt-rollouts:problem:"
#: At most this many prompt names are listed in a 404 (names only, sorted).
MAX_LISTED_PROMPTS = 20
_SEND_JSON = "send the request body as JSON with the header `content-type: application/json`"
_log = logging.getLogger(__name__)

#: error class → (HTTP status, problem type slug, title); the first match wins.
_MAPPING: list[tuple[type[Exception], int, str, str]] = [
    (PromptNotFoundError, 404, "prompt-not-found", "Prompt not found"),
    (VariableError, 422, "invalid-variables", "Invalid variables"),
    (IdempotencyKeyInvalidError, 400, "invalid-idempotency-key", "Invalid Idempotency-Key"),
    (IdempotencyKeyReusedError, 422, "idempotency-key-reused", "Idempotency-Key reused"),
    (IdempotencyKeyInFlightError, 409, "idempotency-key-in-flight", "Request still in flight"),
    (IdempotencyUnavailableError, 503, "idempotency-unavailable", "Idempotency store unavailable"),
    (FeedbackNotFoundError, 404, "feedback-request-not-found", "Request not found"),
    (FeedbackUnavailableError, 503, "feedback-unavailable", "Feedback store unavailable"),
    (TemplateError, 500, "template-failed", "Template failed to render"),
    (RetrievalError, 503, "retrieval-unavailable", "Retrieval unavailable"),
    (EmbeddingError, 503, "embedding-unavailable", "Embedding unavailable"),
    (RateLimitedError, 429, "rate-limited", "Rate limited"),
    (DeadlineExceededError, 503, "deadline-exceeded", "Deadline exceeded"),
    (UpstreamRejectedError, 502, "model-rejected", "Model rejected the request"),
    (InvalidOutputError, 502, "invalid-output", "Model output broke the output contract"),
    (UpstreamUnavailableError, 503, "model-unavailable", "Model unavailable"),
    (ModelError, 503, "model-unavailable", "Model unavailable"),
]


def status_of(error: Exception) -> int:
    """The HTTP status an error becomes."""
    return next((status for kind, status, _, _ in _MAPPING if isinstance(error, kind)), 500)


def _retry_after(error: Exception) -> float | None:
    """Seconds a client should wait before retrying, for errors that say so."""
    if isinstance(error, UpstreamUnavailableError | RateLimitedError | DeadlineExceededError):
        return error.retry_after
    if isinstance(error, IdempotencyKeyInFlightError | FeedbackUnavailableError):
        return 1.0
    return None


def build_problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str,
    request_id: str | None,
    **extensions: Any,
) -> dict[str, Any]:
    """The problem details object (pure)."""
    body: dict[str, Any] = {
        "type": _TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return body


def problem_response(
    request: Request, status: int, slug: str, title: str, detail: str, **extensions: Any
) -> JSONResponse:
    """A problem details response carrying the request id."""
    request_id = request.scope.get("state", {}).get("request_id")
    body = build_problem(status, slug, title, detail, request.url.path, request_id, **extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE)


async def _service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AnswerableError)
    status, slug, title = next(
        (
            (status, slug, title)
            for kind, status, slug, title in _MAPPING
            if isinstance(error, kind)
        ),
        (500, "internal", "Internal error"),
    )
    if status >= 500:
        _log.warning("request failed: %s: %s", type(error).__name__, error)
    extensions: dict[str, Any] = {}
    if isinstance(error, VariableError):
        extensions["errors"] = [
            {"variable": p.variable, "rule": p.rule, "message": f"{p.variable} {p.message}"}
            for p in error.problems
        ]
    if isinstance(error, IdempotencyKeyInvalidError):
        extensions["rule"] = error.rule
    if isinstance(
        error, ModelError | RateLimitedError | DeadlineExceededError | InvalidOutputError
    ):
        extensions["outcome"] = outcome_of_error(error).value
    detail = str(error)
    if isinstance(error, PromptNotFoundError):
        names = _served_prompts(request)
        extensions["prompts"] = names[:MAX_LISTED_PROMPTS]
        more = len(names) - MAX_LISTED_PROMPTS
        listed = ", ".join(names[:MAX_LISTED_PROMPTS]) or "none"
        detail += f"; prompts served here: {listed}" + (f" and {more} more" if more > 0 else "")
    response = problem_response(request, status, slug, title, detail, **extensions)
    retry_after = _retry_after(error)
    if retry_after is not None:
        response.headers["Retry-After"] = format_retry_after(retry_after)
    return response


def _served_prompts(request: Request) -> list[str]:
    """The names of the prompts with a loaded version, sorted."""
    resources = getattr(request.app.state, "resources", None)
    if resources is None:
        return []
    return sorted({served.prompt for served in resources.catalog.registry.versions()})


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a content-type header names JSON (`application/json` or `application/*+json`)."""
    media = (content_type or "").partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def assess_body_error(cause: BaseException | None) -> str:
    """Why a request body could not be parsed as JSON, as a sentence (pure)."""
    if isinstance(cause, UnicodeDecodeError):
        return f"the request body is not valid UTF-8 (byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "the request body nests arrays or objects too deeply"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return "the request body holds a number with too many digits"
    return "the request body could not be parsed as JSON"


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    content_type = request.headers.get("content-type")
    if request.method in ("POST", "PUT", "PATCH") and not is_json_media_type(content_type):
        got = f"`{content_type}`" if content_type else "none"
        return problem_response(
            request,
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"{_SEND_JSON} (content-type sent: {got})",
        )
    errors = [
        {
            "field": "body"
            if e["type"] == "json_invalid"
            else ".".join(str(part) for part in e["loc"][1:]) or "body",
            "message": describe_error(e)
            + (f" at character {e['loc'][1]}" if e["type"] == "json_invalid" else ""),
        }
        for e in error.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem_response(
        request, 422, "invalid-request", "Invalid request", detail, errors=errors
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and error.detail == "There was an error parsing the body":
        # FastAPI's 400 for bodies json.loads raised on (bad UTF-8, nesting, huge numbers).
        detail = assess_body_error(error.__cause__)
        errors = [{"field": "body", "message": detail}]
        return problem_response(
            request, 422, "invalid-request", "Invalid request", f"body: {detail}", errors=errors
        )
    title = HTTPStatus(error.status_code).phrase
    slug = title.lower().replace(" ", "-")
    response = problem_response(request, error.status_code, slug, title, str(error.detail))
    for name, value in (error.headers or {}).items():
        response.headers[name] = value
    return response


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    _log.exception("unhandled error")
    return problem_response(
        request, 500, "internal", "Internal error", "the service failed unexpectedly"
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise to a problem details response."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(PromptingError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
