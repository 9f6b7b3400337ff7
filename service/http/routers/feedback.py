"""``POST /v1/feedback``: a user's rating of one answer, by its request id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from service.dependencies import CallerDep, FeedbackDep
from service.http.feedback_records import FeedbackRequest, FeedbackResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["feedback"])

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys(
    (401, 403, 404, 413, 415, 422, 429, 503), _PROBLEM
)


@router.post(
    "/feedback",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=FeedbackResponse,
    responses=_ERRORS,
)
async def create_feedback(
    body: FeedbackRequest, feedback: FeedbackDep, caller: CallerDep
) -> FeedbackResponse:
    """Rate the answer of `request_id` (within FEEDBACK_TTL; a second rating replaces the first).

    404 when the id is unknown, expired, or was answered for another tenant.
    """
    return await feedback.rate(body, caller)
