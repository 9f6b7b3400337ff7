"""The rules of ``POST /v1/feedback`` (pure): bodies, remembered answers, store keys, scores.

A rating's ``score`` is in [-1, 1]: thumbs are -1 / 0 / 1, a 0..1 rating ``r`` is sent as
``r``. Metrics carry the *normalised* score ``(score + 1) / 2`` in [0, 1]
(:func:`normalise_score`); replacing a rating retracts the old normalised score
(:func:`decide_rating`), so over any window::

    mean normalised score = (Δ score_total - Δ score_retracted_total) / Δ feedback_total
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from service.answering.outcome import Outcome

__all__ = [
    "MAX_COMMENT_CHARS",
    "REMEMBERED_OUTCOMES",
    "REQUEST_ID_PATTERN",
    "Answered",
    "FeedbackRequest",
    "FeedbackResponse",
    "RatingChange",
    "build_feedback_key",
    "decide_rating",
    "normalise_score",
]

#: The longest comment accepted (characters).
MAX_COMMENT_CHARS = 2000
#: Request ids as the service makes or accepts them (X-Request-ID).
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"
#: Answers whose request id is remembered for feedback: every answer sent with HTTP 200.
REMEMBERED_OUTCOMES = frozenset(
    {Outcome.ANSWERED, Outcome.FALLBACK, Outcome.UNKNOWN, Outcome.REFUSED}
)


class FeedbackRequest(BaseModel):
    """A user's rating of one answer."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(
        pattern=REQUEST_ID_PATTERN,
        description="The `request_id` of the /v1/answers response (also its X-Request-ID).",
        examples=["4b6f0d0c9a2e4f7e8f1d2c3b4a596877"],
    )
    score: float = Field(
        ge=-1,
        le=1,
        strict=True,
        allow_inf_nan=False,
        description="-1 / 0 / 1 (thumbs down, neutral, up), or a 0..1 rating.",
        examples=[1],
    )
    comment: str | None = Field(
        default=None,
        max_length=MAX_COMMENT_CHARS,
        strict=True,
        description="Free text; redacted and logged only (never a metric label or span).",
    )


class FeedbackResponse(BaseModel):
    """The rating was taken (202)."""

    request_id: str
    prompt: str
    version: str
    #: An earlier rating of the same answer was replaced (and retracted from the metrics).
    replaced: bool


@dataclass(frozen=True)
class Answered:
    """What the service remembers of one answer: who asked, what answered, the current score."""

    prompt: str
    version: str
    tenant: str
    score: float | None = None

    def to_json(self) -> str:
        """The record as stored in Redis."""
        return json.dumps(
            {
                "prompt": self.prompt,
                "version": self.version,
                "tenant": self.tenant,
                "score": self.score,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Answered:
        """A record read back; raises ValueError (KeyError, TypeError) when it is not one."""
        data = json.loads(raw)
        score = data.get("score")
        return cls(
            prompt=str(data["prompt"]),
            version=str(data["version"]),
            tenant=str(data["tenant"]),
            score=None if score is None else float(score),
        )


@dataclass(frozen=True)
class RatingChange:
    """What one rating does to the feedback metrics."""

    #: promptrollouts_feedback_total increases (the answer had no rating yet).
    counted: bool
    #: Added to promptrollouts_feedback_score_total.
    added: float
    #: Added to promptrollouts_feedback_score_retracted_total (the replaced rating), or 0.
    retracted: float


def build_feedback_key(tenant: str, request_id: str) -> str:
    """The store key of a request id, scoped to the tenant that asked (pure).

    Scoping by tenant means one tenant can neither rate nor overwrite another's answers,
    even when both send the same X-Request-ID.
    """
    encoded = json.dumps([tenant, request_id], ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hashlib.sha256(encoded).hexdigest()


def normalise_score(score: float) -> float:
    """``score`` in [-1, 1] mapped to [0, 1]: (score + 1) / 2 (pure)."""
    return (score + 1.0) / 2.0


def decide_rating(previous: float | None, score: float) -> RatingChange:
    """The metric changes of rating an answer `score` that was rated `previous` (pure)."""
    retracted = 0.0 if previous is None else normalise_score(previous)
    return RatingChange(counted=previous is None, added=normalise_score(score), retracted=retracted)
