"""The fake model's HTTP surface: OpenAI's chat, embeddings and models routes, plus /admin.

Faults (`fakemodel.faults`) are decided per request by `FakeModelState.decide_fault` and
applied here: a delay, then an error status, a hang, a connection reset or broken JSON, or
a degraded answer (`fakemodel.quality`: a refusal, an empty answer, no citations).

Faults set for one model (``POST /admin/faults/models/{model}``) replace the standing
faults for that model's requests, with their own seeded rolls (reseeded from
``seed`` and the model name), so one model's traffic never shifts another's dice.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from fakemodel.answers import build_embedding, count_tokens
from fakemodel.faults import (
    Endpoint,
    FaultAction,
    Faults,
    decide_fault,
    format_retry_after,
    render_error_body,
)
from fakemodel.gullible import build_obedient_answer
from fakemodel.judge import build_judgement, is_judge_request
from fakemodel.quality import build_degraded_answer
from fakemodel.replies import Replies, add_reply_routes, build_reply

__all__ = [
    "FakeModelState",
    "InjectedReset",
    "InjectedResetLogFilter",
    "RecordedRequest",
    "create_fake_model_app",
]

#: How often a delayed or hanging request checks whether its client gave up.
_POLL_SECONDS = 0.05


class InjectedReset(Exception):  # noqa: N818 - it names the fault, not an error condition
    """Raised after a partial body so that the server drops the connection."""


class InjectedResetLogFilter(logging.Filter):
    """Drop the server's "Exception in ASGI application" traceback for injected resets."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for records caused by `InjectedReset`."""
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, InjectedReset)


@dataclass
class RecordedRequest:
    """A request the fake model received, and what it did with it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    #: The status sent; None when nothing complete was sent (hang, reset, client gone).
    response_status: int | None = None
    client_disconnected: bool = False
    #: The injected fault (`FaultAction.label`), e.g. "status:429" or "latency+hang".
    fault: str | None = None


@dataclass
class _Dice:
    """Faults in force for some requests, the count left of them, and their seeded rolls."""

    faults: Faults
    seed: int | str
    remaining_times: int | None = field(init=False, default=None)
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.remaining_times = self.faults.times
        self.rng = random.Random(self.seed)  # noqa: S311 - reproducible chaos, not crypto

    def roll(self, model: str | None, endpoint: Endpoint) -> FaultAction:
        """Decide one request's fault; quality rolls are drawn only when quality faults are on,
        so the error and jitter rolls of a seed stay the same as without them."""
        roll, jitter_roll = self.rng.random(), self.rng.random()
        quality_roll = self.rng.random() if self.faults.degrades_answers else 1.0
        action = decide_fault(
            self.faults,
            model,
            endpoint,
            roll,
            self.remaining_times,
            jitter_roll=jitter_roll,
            quality_roll=quality_roll,
        )
        self.remaining_times = action.remaining_times
        return action

    def standing(self) -> Faults:
        return self.faults.model_copy(update={"times": self.remaining_times})


@dataclass
class FakeModelState:
    """What the fake model knows: its models, the standing faults and the requests it saw."""

    models: list[str] = field(default_factory=lambda: ["gpt-4o-mini", "gpt-4.1-nano"])
    embedding_dimension: int = 64
    requests: list[RecordedRequest] = field(default_factory=list)
    max_recorded: int = 10_000
    faults: Faults = field(default_factory=Faults)
    #: Seeds the rolls for error_rate, jitter and the quality faults; reseeded whenever
    #: faults are set (per-model faults roll from ``f"{seed}:{model}"``).
    seed: int = 0
    #: How chat answers are composed (`fakemodel.replies`); set with /admin/replies.
    replies: Replies = field(default_factory=Replies)
    _dice: _Dice = field(init=False, repr=False)
    _model_dice: dict[str, _Dice] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.set_faults(self.faults)

    @property
    def remaining_times(self) -> int | None:
        """Matching requests left before the standing faults heal; None means until cleared."""
        return self._dice.remaining_times

    def record(self, request: Request, body: Any) -> RecordedRequest:
        """Keep a request for /admin/requests (bounded); returns the record to complete."""
        recorded = RecordedRequest(
            request.method, request.url.path, dict(request.headers), body, time.time()
        )
        self.requests.append(recorded)
        del self.requests[: -self.max_recorded]
        return recorded

    def set_faults(self, faults: Faults) -> None:
        """Replace the standing faults and restart the seeded rolls."""
        self.faults = faults
        self._dice = _Dice(faults, self.seed)

    def set_model_faults(self, model: str, faults: Faults) -> None:
        """Faults for `model` alone, replacing the standing faults for its requests."""
        if faults.models is not None:
            raise ValueError("per-model faults apply to their model: leave models unset")
        self._model_dice[model] = _Dice(faults, f"{self.seed}:{model}")

    def clear_model_faults(self, model: str) -> None:
        """Back to the standing faults for `model`."""
        self._model_dice.pop(model, None)

    def heal(self) -> None:
        """Clear every fault, per-model ones included."""
        self._model_dice.clear()
        self.set_faults(Faults())

    def standing_faults(self) -> Faults:
        """The faults in force, with `times` counting what is left."""
        return self._dice.standing()

    def model_faults(self) -> dict[str, Faults]:
        """The per-model faults in force, with `times` counting what is left."""
        return {model: dice.standing() for model, dice in sorted(self._model_dice.items())}

    def decide_fault(self, model: str | None, endpoint: Endpoint) -> FaultAction:
        """Roll for one request, decide its fault, and heal once `times` runs out."""
        dice = self._model_dice.get(model) if model is not None else None
        action = (dice or self._dice).roll(model, endpoint)
        if action.remaining_times == 0:
            if dice is not None and model is not None:
                self.clear_model_faults(model)
            else:
                self.set_faults(Faults())
        return action


class _ResetResponse(Response):
    """Headers announcing the whole body, half of it, then a dropped connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
            }
        )
        half = bytes(self.body[: len(self.body) // 2])
        await send({"type": "http.response.body", "body": half, "more_body": True})
        raise InjectedReset("injected connection reset")


async def _wait(request: Request, seconds: float) -> bool:
    """Sleep `seconds` (inf: forever) in small steps; False as soon as the client is gone."""
    deadline = time.monotonic() + seconds
    while not await request.is_disconnected():
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        await asyncio.sleep(min(_POLL_SECONDS, left))
    return False


def _injected_error(action: FaultAction, status: int) -> Response:
    content, media_type = render_error_body(status, action.error_body)
    headers = {}
    if action.retry_after is not None:
        now = datetime.now(UTC)
        headers["Retry-After"] = format_retry_after(
            action.retry_after, action.retry_after_format, now
        )
    return Response(content, status, headers=headers, media_type=media_type)


async def _respond(
    request: Request, recorded: RecordedRequest, action: FaultAction, response: Response
) -> Response:
    """Send `response`, or what `action` makes of it; complete the record."""
    recorded.fault = action.label
    delay = action.delay_ms / 1000 if action.failure != "hang" else math.inf
    if delay > 0 and not await _wait(request, delay):
        recorded.client_disconnected = True
        return Response(status_code=499)
    if action.failure == "status" and action.status is not None:
        response = _injected_error(action, action.status)
    elif action.failure == "malformed":
        truncated = bytes(response.body[: len(response.body) // 2])
        response = Response(truncated, 200, media_type="application/json")
    elif action.failure == "reset":
        return _ResetResponse(
            bytes(response.body), response.status_code, media_type=response.media_type
        )
    recorded.response_status = response.status_code
    return response


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": None}}, status)


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
            return await _respond(request, recorded, action, missing)
        obeyed = build_obedient_answer(messages) if state.faults.obey_injections else None
        answer = obeyed or build_judgement(messages, action.judge_score)
        if answer is None:
            answer = build_reply(state.replies, messages, model, max_tokens)
            if action.reply is not None and not is_judge_request(messages):
                answer = build_degraded_answer(action.reply, answer)
        prompt_tokens = sum(count_tokens(str(m.get("content", ""))) for m in messages)
        completion_tokens = count_tokens(answer)
        completion = JSONResponse(
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
        return await _respond(request, recorded, action, completion)

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
        return await _respond(request, recorded, action, vectors)

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
