"""``POST /v1/answers``: answer a question with a prompt."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from service.dependencies import AnswerServiceDep, MetricsDep, RequestIdDep
from service.schemas import AnswerRequest, AnswerResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["answers"])

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


@router.post(
    "/answers",
    response_model=AnswerResponse,
    responses={404: _PROBLEM, 413: _PROBLEM, 422: _PROBLEM, 503: _PROBLEM},
)
async def create_answer(
    body: AnswerRequest,
    response: Response,
    answers: AnswerServiceDep,
    metrics: MetricsDep,
    request_id: RequestIdDep,
) -> AnswerResponse:
    """Answer `question` with the prompt's current version (or the pinned `version`)."""
    answer = await answers.answer(body, request_id)
    response.headers["X-Prompt-Version"] = answer.version
    metrics.requests.labels(answer.prompt, answer.version, answer.outcome.value).inc()
    metrics.request_duration.labels(answer.prompt, answer.version).observe(answer.latency_ms / 1000)
    return answer
