"""``POST /v1/answers``: answer a question with a prompt (optionally idempotent)."""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from redis.exceptions import RedisError

from api.v1alpha1 import SEMVER_PATTERN
from service.access import require_prompt
from service.dependencies import (
    AnswerServiceDep,
    CallerDep,
    IdempotencyStoreDep,
    MetricsDep,
    RequestIdDep,
    ResourcesDep,
    SettingsDep,
)
from service.errors import IdempotencyUnavailableError
from service.idempotency import (
    IdempotencyStore,
    Replay,
    StoredResponse,
    build_fingerprint,
    build_scope_key,
    build_upstream_key,
    validate_key,
)
from service.schemas import AnswerRequest, AnswerResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["answers"])
_log = logging.getLogger(__name__)

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys(
    (400, 401, 403, 404, 409, 413, 422, 429, 502, 503), _PROBLEM
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
    caller: CallerDep,
    resources: ResourcesDep,
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
    require_prompt(caller, body.prompt, metrics)
    if pinned_version is not None and body.version is None:
        body = body.model_copy(update={"version": pinned_version})
    received_at = request.scope.get("state", {}).get("received_at")
    if idempotency_key is None:
        # A fresh key per request for the model's retries, never the caller's X-Request-ID.
        upstream_key = secrets.token_hex(32)
        return _answer_response(
            await answers.answer(body, request_id, upstream_key, received_at=received_at)
        )
    key = validate_key(_unquote(idempotency_key))
    scope = build_scope_key(caller.scope, key)
    fingerprint = build_fingerprint(
        await request.body(), pinned_version=pinned_version, tenant=caller.tenant
    )
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
        upstream_key = build_upstream_key(resources.idempotency_secret, scope)
        response = _answer_response(
            await answers.answer(body, request_id, upstream_key, received_at=received_at)
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
        saved = await store.complete(
            scope, begun.token, fingerprint, stored, settings.idempotency_ttl_seconds
        )
        reason = "" if saved else "its lease expired first"
    except RedisError as error:
        await _release_quietly(store, scope, begun.token)
        saved, reason = False, f"the store failed ({type(error).__name__})"
    if not saved:
        metrics.idempotency_save_failures.inc()
        _log.warning(
            "answer sent but not stored for its Idempotency-Key: %s; a retry will run again",
            reason,
        )
    return response


async def _release_quietly(store: IdempotencyStore, scope: str, token: str) -> None:
    """Give the key back; if the store is down, its lease expires on its own."""
    with contextlib.suppress(RedisError):
        await store.release(scope, token)
