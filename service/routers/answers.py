"""``POST /v1/answers``: answer a question with a prompt (optionally idempotent)."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from redis.exceptions import RedisError

from api.v1alpha1 import SEMVER_PATTERN
from service.dependencies import (
    AnswerServiceDep,
    IdempotencyStoreDep,
    MetricsDep,
    RequestIdDep,
    SettingsDep,
)
from service.errors import IdempotencyUnavailableError
from service.idempotency import (
    IdempotencyStore,
    Replay,
    StoredResponse,
    build_fingerprint,
    build_scope_key,
    validate_key,
)
from service.schemas import AnswerRequest, AnswerResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["answers"])

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys(
    (400, 404, 409, 413, 422, 429, 502, 503), _PROBLEM
)


def _answer_response(answer: AnswerResponse) -> JSONResponse:
    return JSONResponse(
        answer.model_dump(mode="json"), headers={"X-Prompt-Version": answer.version}
    )


def _unquote(key: str) -> str:
    """The draft sends the key as a structured-field string: `"abc"` and `abc` are one key."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


@router.post("/answers", response_model=AnswerResponse, responses=_ERRORS)
async def create_answer(
    body: AnswerRequest,
    request: Request,
    answers: AnswerServiceDep,
    store: IdempotencyStoreDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    pinned_version: Annotated[
        str | None,
        Header(
            alias="X-Prompt-Version",
            pattern=SEMVER_PATTERN,
            description="Pin a version for testing (the body's `version` wins).",
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes retries safe: a repeat with the same key and body replays "
            "the first response instead of answering again.",
        ),
    ] = None,
) -> Response:
    """Answer `question` with the prompt's current version (or the pinned `version`)."""
    if pinned_version is not None and body.version is None:
        body = body.model_copy(update={"version": pinned_version})
    received_at = request.scope.get("state", {}).get("received_at")
    if idempotency_key is None:
        return _answer_response(await answers.answer(body, request_id, received_at=received_at))
    key = validate_key(_unquote(idempotency_key))
    scope = build_scope_key(request.headers.get("authorization"), key)
    fingerprint = build_fingerprint(await request.body())
    try:
        begun = await store.begin(scope, fingerprint, settings.idempotency_lease_seconds)
    except RedisError as error:
        raise IdempotencyUnavailableError(f"idempotency store: {type(error).__name__}") from error
    if isinstance(begun, Replay):
        metrics.idempotent_replays.inc()
        stored = begun.response
        return Response(
            content=stored.body,
            status_code=stored.status,
            headers={**dict(stored.headers), "Idempotent-Replayed": "true"},
        )
    try:
        response = _answer_response(
            await answers.answer(body, request_id, key, received_at=received_at)
        )
    except BaseException:
        # Failures are not stored: a retry with the same key runs again.
        await _release_quietly(store, scope, begun.token)
        raise
    stored = StoredResponse(
        status=response.status_code,
        headers=(
            ("content-type", "application/json"),
            ("x-prompt-version", response.headers["x-prompt-version"]),
        ),
        body=bytes(response.body),
    )
    try:
        await store.complete(
            scope, begun.token, fingerprint, stored, settings.idempotency_ttl_seconds
        )
    except RedisError:
        await _release_quietly(store, scope, begun.token)
    return response


async def _release_quietly(store: IdempotencyStore, scope: str, token: str) -> None:
    """Give the key back; if the store is down, its lease expires on its own."""
    with contextlib.suppress(RedisError):
        await store.release(scope, token)
