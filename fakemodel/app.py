"""The fake model's HTTP surface: OpenAI's chat, embeddings and models routes, plus /admin.

Faults (`fakemodel.faults`) are decided per request by `FakeModelState.decide_fault` and
applied by `fakemodel.delivery`: a delay, then an error status, a hang, a connection reset
or broken JSON; or here, a degraded answer (`fakemodel.quality`: a refusal, an empty
answer, no citations).

Faults set for one model (``POST /admin/faults/models/{model}``) replace the standing
faults for that model's requests, with their own seeded rolls (reseeded from
``seed`` and the model name), so one model's traffic never shifts another's dice.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from fakemodel.answers import build_embedding, count_tokens
from fakemodel.delivery import (
    InjectedReset,
    InjectedResetLogFilter,
    apply_fault,
    apply_stream_fault,
)
from fakemodel.faults import FaultAction, Faults
from fakemodel.gullible import build_obedient_answer
from fakemodel.judge import build_judgement, is_judge_request
from fakemodel.quality import build_degraded_answer
from fakemodel.replies import add_reply_routes, build_reply
from fakemodel.state import FakeModelState, RecordedRequest
from fakemodel.streaming import build_usage
from fakemodel.structured import (
    build_structured_answer,
    find_json_schema,
    is_repair_conversation,
)
from fakemodel.tools import add_tool_routes, build_tool_turn

__all__ = [
    "FakeModelState",
    "InjectedReset",
    "InjectedResetLogFilter",
    "RecordedRequest",
    "create_fake_model_app",
]


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": None}}, status)


def _compose(
    state: FakeModelState, action: FaultAction, body: dict[str, Any], max_tokens: int
) -> tuple[str, dict[str, Any] | None]:
    """The answer text, and the assistant message when it calls tools: tool calls, obeyed
    injection, judgement, JSON document, quoted tool results, or the reply (degraded)."""
    messages = body["messages"]
    turn = build_tool_turn(body, messages, state.tool_play)
    if turn is not None and turn.get("tool_calls"):
        return "", turn
    obeyed = build_obedient_answer(messages) if state.faults.obey_injections else None
    answer = obeyed or build_judgement(messages, action.judge_score)
    if answer is not None:
        return answer, None
    schema = find_json_schema(body)
    if schema is not None:
        return build_structured_answer(schema, action.reply, is_repair_conversation(messages)), None
    if turn is not None:
        return str(turn.get("content") or ""), None
    answer = build_reply(state.replies, messages, str(body["model"]), max_tokens)
    if action.reply is not None and not is_judge_request(messages):
        answer = build_degraded_answer(action.reply, answer)
    return answer, None


def create_fake_model_app(state: FakeModelState | None = None) -> FastAPI:
    """A fresh fake model server; pass `state` to inspect it from a test."""
    state = state or FakeModelState()
    app = FastAPI(title="prompt-rollouts fake model", docs_url=None, redoc_url=None)
    app.state.fake = state

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Response:
        try:
            body = await request.json()
            messages = body["messages"]
            model = str(body["model"])
            max_tokens = int(body.get("max_tokens") or 256)
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                raise TypeError("messages must be a list of objects")
        except (ValueError, KeyError, TypeError):
            return _error(400, "body must be JSON with model and messages", "invalid_request_error")
        recorded = state.record(request, body)
        action = state.decide_fault(model, "chat")
        if model not in state.models:
            missing = _error(404, f"The model `{model}` does not exist", "invalid_request_error")
            return await apply_fault(request, recorded, action, missing)
        answer, message = _compose(state, action, body, max_tokens)
        prompt_tokens = sum(count_tokens(str(m.get("content", ""))) for m in messages)
        usage = build_usage(prompt_tokens, count_tokens(answer))
        if body.get("stream") is True:
            return await apply_stream_fault(request, recorded, action, answer, model, usage, body)
        completion = JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message or {"role": "assistant", "content": answer},
                        "finish_reason": "tool_calls" if message else "stop",
                    }
                ],
                "usage": usage,
            }
        )
        return await apply_fault(request, recorded, action, completion)

    @app.post("/v1/embeddings", response_model=None)
    async def embeddings(request: Request) -> Response:
        try:
            body = await request.json()
            raw = body["input"]
            texts = [raw] if isinstance(raw, str) else [str(t) for t in raw]
        except (ValueError, KeyError, TypeError):
            return _error(400, "body must be JSON with input", "invalid_request_error")
        recorded = state.record(request, body)
        model = body.get("model")
        action = state.decide_fault(None if model is None else str(model), "embeddings")
        prompt_tokens = sum(count_tokens(t) for t in texts)
        vectors = JSONResponse(
            {
                "object": "list",
                "model": str(body.get("model", "fake-embedding")),
                "data": [
                    {
                        "object": "embedding",
                        "index": i,
                        "embedding": build_embedding(t, state.embedding_dimension),
                    }
                    for i, t in enumerate(texts)
                ],
                "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
            }
        )
        return await apply_fault(request, recorded, action, vectors)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in state.models
            ],
        }

    @app.get("/admin/requests")
    async def recorded() -> list[dict[str, Any]]:
        return [vars(r) for r in state.requests]

    @app.delete("/admin/requests", status_code=204)
    async def forget() -> None:
        state.requests.clear()

    @app.get("/admin/faults")
    async def standing_faults() -> Faults:
        return state.standing_faults()

    @app.post("/admin/faults")
    async def set_faults(faults: Faults) -> Faults:
        state.set_faults(faults)
        return state.standing_faults()

    @app.delete("/admin/faults", status_code=204)
    async def heal() -> None:
        state.heal()

    _add_model_fault_routes(app, state)
    add_reply_routes(app, state)
    add_tool_routes(app, state)
    return app


def _add_model_fault_routes(app: FastAPI, state: FakeModelState) -> None:
    """GET /admin/faults/models; POST/DELETE /admin/faults/models/{model}."""

    @app.get("/admin/faults/models")
    async def per_model_faults() -> dict[str, Faults]:
        return state.model_faults()

    @app.post("/admin/faults/models/{model}")
    async def set_model_faults(model: str, faults: Faults) -> Faults:
        if model not in state.models:
            raise HTTPException(404, f"the fake model does not serve {model!r}")
        try:
            state.set_model_faults(model, faults)
        except ValueError as error:
            raise HTTPException(422, str(error)) from error
        return state.model_faults()[model]

    @app.delete("/admin/faults/models/{model}", status_code=204)
    async def clear_model_faults(model: str) -> None:
        state.clear_model_faults(model)
