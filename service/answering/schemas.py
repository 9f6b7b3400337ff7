"""Request and response bodies of the HTTP API (see docs/api.md)."""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.v1alpha1 import DNS_LABEL_PATTERN, SEMVER_PATTERN, Phase
from service.answering.outcome import Outcome

__all__ = [
    "AnswerRequest",
    "AnswerResponse",
    "Citation",
    "HealthResponse",
    "PromptSummary",
    "PromptsResponse",
    "Usage",
    "has_visible_text",
]


def has_visible_text(text: str) -> bool:
    """Whether `text` holds a character that is neither whitespace nor invisible (pure).

    Invisible: format characters (zero-width space and joiners, BOM, bidi marks: Unicode
    category Cf), controls (Cc), and the Hangul and Braille blanks that render as nothing.
    """
    return any(
        not char.isspace()
        and unicodedata.category(char) not in ("Cf", "Cc", "Zs")
        and char not in _BLANKS
        for char in text
    )


#: Letters that render as blank space.
_BLANKS = frozenset("\u2800\u3164\u115f\u1160\uffa0")


class AnswerRequest(BaseModel):
    """Ask one question of a prompt."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63, examples=["policy-qa"])
    question: str = Field(min_length=1, max_length=4000, examples=["Can I refund a digital item?"])
    variables: dict[str, Any] = Field(
        default_factory=dict,
        max_length=64,
        examples=[{"tone": "formal"}],
        description="Values of the version's declared variables (JSON scalars).",
    )
    user: str | None = Field(
        default=None,
        max_length=256,
        description="Stable end-user id: keeps one user on one version during a rollout.",
    )

    @field_validator("question")
    @classmethod
    def _visible_text(cls, question: str) -> str:
        if not has_visible_text(question):
            raise ValueError(
                "question must contain visible text, not only whitespace or zero-width characters"
            )
        return question

    @field_validator("variables")
    @classmethod
    def _scalars_only(cls, variables: dict[str, Any]) -> dict[str, Any]:
        for name, value in variables.items():
            if isinstance(value, dict | list):
                raise ValueError(
                    f"variable {name!r} must be a string, number, boolean or null, "
                    f"not {'an object' if isinstance(value, dict) else 'an array'}"
                )
        return variables

    version: str | None = Field(
        default=None,
        pattern=SEMVER_PATTERN,
        description="Pin a version (evaluation, debugging); normally omitted.",
    )
    stream: bool = Field(
        default=False,
        description="Answer as server-sent events: `delta` events, then one `answer` or "
        "`error` event (docs/api.md, Streaming).",
    )


class Citation(BaseModel):
    """A retrieved passage the answer relies on."""

    id: str = Field(examples=["digital-goods#0"])
    source: str = Field(examples=["digital-goods.md"])
    score: float


class Usage(BaseModel):
    """Tokens and cost of one answer."""

    input_tokens: int
    output_tokens: int
    cost_usd: float


class AnswerResponse(BaseModel):
    """The answer and how it was produced."""

    request_id: str
    prompt: str
    version: str
    model: str | None = Field(description="Model that answered; null when no model was called.")
    outcome: Outcome
    answer: str
    output: Any = Field(
        default=None,
        description="With an output contract (spec.output): the answer as a JSON document "
        "meeting the version's schema (answer holds its JSON text); null otherwise.",
    )
    citations: list[Citation]
    usage: Usage
    cache_hit: bool = Field(default=False, description="Served from the response cache.")
    latency_ms: float


class PromptSummary(BaseModel):
    """One loaded PromptVersion and its share of traffic."""

    name: str
    prompt: str
    version: str
    phase: Phase
    weight: int
    model: str
    collection: str | None
    owner: str
    message: str | None


class PromptsResponse(BaseModel):
    """Every loaded PromptVersion."""

    items: list[PromptSummary]


class HealthResponse(BaseModel):
    """Liveness or readiness."""

    status: str
    detail: str | None = None
