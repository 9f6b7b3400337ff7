"""The fake model's HTTP surface: OpenAI's chat, embeddings and models routes, plus /admin."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fakemodel.answers import build_answer, build_embedding, count_tokens

__all__ = ["FakeModelState", "RecordedRequest", "create_fake_model_app"]


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake model received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float


@dataclass
class FakeModelState:
    """What the fake model knows: its models and the requests it saw."""

    models: list[str] = field(default_factory=lambda: ["gpt-4o-mini", "gpt-4.1-nano"])
    embedding_dimension: int = 64
    requests: list[RecordedRequest] = field(default_factory=list)
    max_recorded: int = 10_000

    def record(self, request: Request, body: Any) -> None:
        """Keep a request for /admin/requests (bounded)."""
        self.requests.append(
            RecordedRequest(
                request.method, request.url.path, dict(request.headers), body, time.time()
            )
        )
        del self.requests[: -self.max_recorded]


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": None}}, status)


def create_fake_model_app(state: FakeModelState | None = None) -> FastAPI:
    """A fresh fake model server; pass `state` to inspect it from a test."""
    state = state or FakeModelState()
    app = FastAPI(title="prompt-rollouts fake model", docs_url=None, redoc_url=None)
    app.state.fake = state

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            messages = body["messages"]
            model = str(body["model"])
            max_tokens = int(body.get("max_tokens") or 256)
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                raise TypeError("messages must be a list of objects")
        except (ValueError, KeyError, TypeError):
            return _error(400, "body must be JSON with model and messages", "invalid_request_error")
        state.record(request, body)
        if model not in state.models:
            return _error(404, f"The model `{model}` does not exist", "invalid_request_error")
        answer = build_answer(messages, max_tokens)
        prompt_tokens = sum(count_tokens(str(m.get("content", ""))) for m in messages)
        completion_tokens = count_tokens(answer)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    @app.post("/v1/embeddings", response_model=None)
    async def embeddings(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            raw = body["input"]
            texts = [raw] if isinstance(raw, str) else [str(t) for t in raw]
        except (ValueError, KeyError, TypeError):
            return _error(400, "body must be JSON with input", "invalid_request_error")
        state.record(request, body)
        prompt_tokens = sum(count_tokens(t) for t in texts)
        return JSONResponse(
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

    return app
