"""``POST /v1/chat/completions``: the OpenAI-compatible façade over ``/v1/answers``.

The request is translated (:mod:`service.http.openai_request`), answered by the same
AnswerService as ``/v1/answers`` (rollout choice, retrieval, guardrails, resilience,
metrics, logs, traces), remembered for ``/v1/feedback`` and, with an ``Idempotency-Key``,
run at most once; the answer is shaped as a ``chat.completion``
(:mod:`service.http.openai_shapes`). Errors are problem details turned into OpenAI error
objects by :class:`service.http.openai_errors.OpenAIErrorMiddleware`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from api.v1alpha1 import VariableType
from prompting.errors import VariableError, VariableProblem
from service.answering.schemas import AnswerRequest, AnswerResponse
from service.catalog.registry import PromptRegistry, ServedVersion
from service.dependencies import (
    AnswerServiceDep,
    CallerDep,
    FeedbackDep,
    IdempotencyDep,
    IdempotencyKeyHeader,
    MetricsDep,
    NoShadowHeader,
    RegistryDep,
    RequestIdDep,
)
from service.http.access import require_prompt
from service.http.idempotency_keys import Replay, StoredResponse
from service.http.openai_request import (
    HISTORY_VARIABLE,
    ChatCompletionRequest,
    ChatRequestError,
    build_answer_request,
    decide_variable_types,
)
from service.http.openai_shapes import build_completion
from service.http.stream_answers import StreamCall
from service.http.stream_completions import stream_completion

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai"])

_ERROR: dict[str, Any] = {"content": {"application/json": {}}, "description": "OpenAI error"}
_ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys(
    (400, 401, 403, 404, 409, 413, 422, 429, 502, 503), _ERROR
)
_HISTORY = (
    "earlier turns in `messages` are passed to the template as the variable `history`, "
    "which the answering prompt version does not declare: send only the user's question "
    "as the one message, or declare a string variable `history` in the version"
)


def _invalid(error: ChatRequestError) -> RequestValidationError:
    """A translation error as the request validation error FastAPI would raise (422)."""
    detail = {"type": "value_error", "loc": ("body", *error.loc), "msg": error.message}
    return RequestValidationError([detail])


def _explain_history(error: VariableError) -> VariableError:
    """The version's refusal of `history`, saying where it came from (earlier turns)."""
    problems = [
        VariableProblem(p.variable, p.rule, _HISTORY)
        if p.variable == HISTORY_VARIABLE and p.rule == "unknown"
        else p
        for p in error.problems
    ]
    return VariableError(problems)


def _types(registry: PromptRegistry, prompt: str, version: str | None) -> dict[str, VariableType]:
    """The variable types the versions that may answer (the pinned one, or those taking
    traffic) agree on."""
    return decide_variable_types(
        {v.name: v.type for v in served.resource.spec.variables}
        for served in registry.versions()
        if isinstance(served, ServedVersion)
        and served.prompt == prompt
        and (served.version == version if version else served.weight > 0)
    )


def _completion_response(answer: AnswerResponse) -> Response:
    completion = build_completion(answer, int(time.time()))
    return Response(
        json.dumps(completion, ensure_ascii=False, separators=(",", ":")).encode(),
        media_type="application/json",
        headers={"X-Prompt-Version": answer.version},
    )


@router.post("/chat/completions", responses=_ERRORS)
async def create_chat_completion(
    body: ChatCompletionRequest,
    request: Request,
    answers: AnswerServiceDep,
    idempotency: IdempotencyDep,
    feedback: FeedbackDep,
    metrics: MetricsDep,
    request_id: RequestIdDep,
    caller: CallerDep,
    registry: RegistryDep,
    no_shadow: NoShadowHeader = False,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Answer the last user message with the prompt named by `model` (OpenAI wire format)."""
    try:
        ask = build_answer_request(body, lambda prompt, version: _types(registry, prompt, version))
    except ChatRequestError as error:
        raise _invalid(error) from error
    require_prompt(caller, ask.prompt, metrics)
    received_at = request.scope.get("state", {}).get("received_at")
    if body.stream:
        call = StreamCall(
            ask,
            await request.body(),
            answers,
            idempotency,
            feedback,
            caller,
            request_id,
            received_at,
            idempotency_key,
        )
        return await stream_completion(
            call, include_usage=bool((body.stream_options or {}).get("include_usage"))
        )
    with_history = len(body.messages) > 1

    async def answer(upstream_key: str) -> AnswerResponse:
        try:
            return await answers.answer(
                ask, request_id, upstream_key, received_at=received_at, shadow=not no_shadow
            )
        except VariableError as error:
            raise (_explain_history(error) if with_history else error) from None

    if idempotency_key is None:
        # A fresh key per request for the model's retries, never the caller's X-Request-ID.
        answered = await answer(secrets.token_hex(32))
        feedback.remember(request_id, answered, caller.tenant)
        return _completion_response(answered)
    return await _idempotent(request, ask, idempotency, idempotency_key, caller, answer, feedback)


async def _idempotent(
    request: Request,
    ask: AnswerRequest,
    idempotency: IdempotencyDep,
    key: str,
    caller: CallerDep,
    answer: Callable[[str], Awaitable[AnswerResponse]],
    feedback: FeedbackDep,
) -> Response:
    """Run `answer` at most once per (caller, key); a repeat replays the stored response."""
    begun = await idempotency.begin(
        key, scope=caller.scope, body=await request.body(), tenant=caller.tenant
    )
    if isinstance(begun, Replay):
        stored = begun.response
        return Response(
            content=stored.body,
            status_code=stored.status,
            headers={**dict(stored.headers), "Idempotent-Replayed": "true"},
        )
    try:
        answered = await answer(begun.upstream_key)
        response = _completion_response(answered)
    except BaseException:
        # Failures are not stored: a retry with the same key runs again.
        await idempotency.release(begun)
        raise
    feedback.remember(answered.request_id, answered, caller.tenant)
    await idempotency.complete(
        begun,
        StoredResponse(
            status=response.status_code,
            headers=(
                ("content-type", "application/json"),
                ("x-prompt-version", answered.version),
            ),
            body=bytes(response.body),
        ),
    )
    return response
