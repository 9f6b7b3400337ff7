"""``POST /v1/answers``: answer a question with a prompt (optionally idempotent)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from api.v1alpha1 import SEMVER_PATTERN
from service.answering.schemas import AnswerRequest, AnswerResponse
from service.dependencies import (
    IdempotencyKeyHeader,
    NoShadowHeader,
    read_caller,
    read_request_id,
    read_resources,
)
from service.http.access import require_prompt
from service.http.auth import Caller
from service.http.idempotency_keys import Replay, StoredResponse
from service.http.stream_answers import StreamCall, stream_answer
from service.resources import Resources

__all__ = ["ANSWERS_PATH", "answer_plainly", "router"]

router = APIRouter(prefix="/v1", tags=["answers"])
_ROUTE = "/answers"
#: The endpoint's path (service/http/answer_fast_path.py serves its plain requests too).
ANSWERS_PATH = router.prefix + _ROUTE

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys(
    (400, 401, 403, 404, 409, 413, 422, 429, 502, 503), _PROBLEM
)


def _answer_response(answer: AnswerResponse) -> Response:
    # Serialised once, by pydantic-core, from the model the pipeline built (no dict copy,
    # no second pass through json.dumps).
    return Response(
        answer.__pydantic_serializer__.to_json(answer),
        media_type="application/json",
        headers={"X-Prompt-Version": answer.version},
    )


async def answer_plainly(
    resources: Resources,
    caller: Caller,
    request_id: str,
    received_at: float | None,
    body: AnswerRequest,
    *,
    shadow: bool,
) -> Response:
    """Answer a request that carries no Idempotency-Key and asks for no stream."""
    require_prompt(caller, body.prompt, resources.metrics)
    # A fresh key per request for the model's retries, never the caller's X-Request-ID.
    upstream_key = secrets.token_hex(32)
    answer = await resources.answers.answer(
        body, request_id, upstream_key, received_at=received_at, shadow=shadow
    )
    resources.feedback.remember(request_id, answer, caller.tenant)
    return _answer_response(answer)


@router.post(_ROUTE, response_model=AnswerResponse, responses=_ERRORS)
async def create_answer(
    body: AnswerRequest,
    request: Request,
    pinned_version: Annotated[
        str | None,
        Header(
            alias="X-Prompt-Version",
            pattern=SEMVER_PATTERN,
            description="Pin a version for testing (the body's `version` wins).",
        ),
    ] = None,
    no_shadow: NoShadowHeader = False,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Answer `question` with the prompt's current version (or the pinned `version`);
    with `"stream": true`, as server-sent events (docs/api.md, Streaming)."""
    # Read from the request, not through `Depends`: no dependency tree to solve per request.
    resources, caller = read_resources(request), read_caller(request)
    request_id = read_request_id(request)
    answers, idempotency, feedback = resources.answers, resources.idempotency, resources.feedback
    if pinned_version is not None and body.version is None:
        body = body.model_copy(update={"version": pinned_version})
    received_at = request.scope.get("state", {}).get("received_at")
    if not body.stream and idempotency_key is None:
        return await answer_plainly(
            resources, caller, request_id, received_at, body, shadow=not no_shadow
        )
    require_prompt(caller, body.prompt, resources.metrics)
    if body.stream:
        return await stream_answer(
            StreamCall(
                body,
                await request.body(),
                answers,
                idempotency,
                feedback,
                caller,
                request_id,
                received_at,
                idempotency_key,
                pinned_version,
            )
        )
    assert idempotency_key is not None  # the plain case returned above
    begun = await idempotency.begin(
        idempotency_key,
        scope=caller.scope,
        body=await request.body(),
        pinned_version=pinned_version,
        tenant=caller.tenant,
    )
    if isinstance(begun, Replay):
        stored = begun.response
        return Response(
            content=stored.body,
            status_code=stored.status,
            headers={**dict(stored.headers), "Idempotent-Replayed": "true"},
        )
    try:
        answer = await answers.answer(
            body, request_id, begun.upstream_key, received_at=received_at, shadow=not no_shadow
        )
        response = _answer_response(answer)
    except BaseException:
        # Failures are not stored: a retry with the same key runs again.
        await idempotency.release(begun)
        raise
    feedback.remember(request_id, answer, caller.tenant)
    await idempotency.complete(
        begun,
        StoredResponse(
            status=response.status_code,
            headers=(
                ("content-type", "application/json"),
                ("x-prompt-version", response.headers["x-prompt-version"]),
            ),
            body=bytes(response.body),
        ),
    )
    return response
