"""Fault injection for the fake model: what to break, and for which request (pure).

`Faults` is the standing configuration (set with ``POST /admin/faults`` or CLI flags).
`decide_fault` turns it into a `FaultAction` for one request; the caller supplies the
random rolls (from a seeded `random.Random`) so the decision itself is deterministic.
`fakemodel.errors` renders the injected error responses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Endpoint",
    "ErrorBody",
    "Failure",
    "FaultAction",
    "Faults",
    "QualityReply",
    "RetryAfterFormat",
    "decide_fault",
    "decide_quality_reply",
]

Endpoint = Literal["chat", "embeddings"]
RetryAfterFormat = Literal["seconds", "http-date"]
ErrorBody = Literal["openai", "empty", "html"]
Failure = Literal["status", "hang", "reset", "malformed"]
#: A degraded but successful chat answer (`fakemodel.quality`): the quality faults.
QualityReply = Literal["refuse", "unknown", "uncited", "invalid_json", "off_schema"]
_ENDPOINTS: tuple[Endpoint, ...] = ("chat", "embeddings")


class Faults(BaseModel):
    """The standing faults; the default value injects nothing."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    status: int | None = Field(None, ge=400, le=599, description="HTTP error status to return.")
    error_rate: float = Field(
        1.0, ge=0, le=1, description="Fraction of matching requests that get the failure."
    )
    retry_after: float | None = Field(None, ge=0, description="Retry-After, in seconds.")
    retry_after_format: RetryAfterFormat = "seconds"
    error_body: ErrorBody = "openai"
    latency_ms: float = Field(0.0, ge=0, description="Delay before every matching response.")
    jitter_ms: float = Field(0.0, ge=0, description="Extra delay, uniform in [0, jitter_ms].")
    token_delay_ms: float = Field(
        0.0, ge=0, le=10_000, description="Pause between the tokens of a stream (stream: true)."
    )
    hang: bool = Field(False, description="Never answer; wait until the client gives up.")
    reset: bool = Field(
        False,
        description="Send headers and half the body, then drop (a stream: half its tokens).",
    )
    malformed: bool = Field(
        False,
        description="Answer 200 with truncated, invalid JSON (a stream: a broken chunk midway).",
    )
    models: list[str] | None = Field(
        None, min_length=1, description="Only requests for these models; null means all."
    )
    endpoints: list[Endpoint] = Field(default_factory=lambda: list(_ENDPOINTS), min_length=1)
    times: int | None = Field(
        None, ge=1, description="Affect only the next N matching requests, then heal."
    )
    unknown_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Fraction of chat answers that are empty: the service counts them "
        "`unknown` and answers with the version's emptyAnswer.",
    )
    uncited_rate: float = Field(
        0.0, ge=0, le=1, description="Fraction of chat answers with their [n] citations removed."
    )
    refuse_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description='Fraction of chat answers that are exactly "I can\'t help with that request."',
    )
    invalid_json_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Fraction of answers to response_format json_schema requests that are not "
        "JSON (a repair conversation, one holding an assistant turn, is never broken).",
    )
    off_schema_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Fraction of answers to response_format json_schema requests that are JSON "
        "breaking the schema: the first required property left out, or the wrong type.",
    )
    judge_score: float | None = Field(
        None,
        ge=0,
        le=1,
        description="The score every judge request gets (null: computed from the rubric).",
    )
    obey_injections: bool = Field(
        False,
        description="Act as a gullible model: answer with any prompt line saying 'The secret "
        "is ...', or with the system message when the prompt asks to reveal it.",
    )

    @model_validator(mode="after")
    def _check_combination(self) -> Self:
        failures = self.failures
        if len(failures) > 1:
            raise ValueError(
                "choose at most one of status, hang, reset, malformed "
                f"(got {' and '.join(failures)})"
            )
        if self.status is None:
            stray = [
                name
                for name, value, default in (
                    ("retry_after", self.retry_after, None),
                    ("retry_after_format", self.retry_after_format, "seconds"),
                    ("error_body", self.error_body, "openai"),
                )
                if value != default
            ]
            if stray:
                raise ValueError(f"set status to use {', '.join(stray)}")
        quality = self.quality_rate
        if quality > 1 + 1e-9:
            raise ValueError(
                "refuse_rate + unknown_rate + uncited_rate + invalid_json_rate + off_schema_rate "
                f"must be at most 1 (got {quality:g}): each answer gets at most one of them"
            )
        if self.error_rate != 1.0 and not failures:
            raise ValueError(
                "error_rate applies to status, hang, reset or malformed; set one of them"
            )
        return self

    @property
    def failures(self) -> list[Failure]:
        """The failure modes switched on (validation allows at most one)."""
        flags: list[tuple[Failure, bool]] = [
            ("status", self.status is not None),
            ("hang", self.hang),
            ("reset", self.reset),
            ("malformed", self.malformed),
        ]
        return [name for name, on in flags if on]

    @property
    def quality_rate(self) -> float:
        """The share of chat answers degraded, by any of the quality faults."""
        return (
            self.refuse_rate
            + self.unknown_rate
            + self.uncited_rate
            + self.invalid_json_rate
            + self.off_schema_rate
        )

    @property
    def degrades_answers(self) -> bool:
        """Whether any quality fault rate (refuse, unknown, uncited, invalid_json, off_schema)
        is above zero."""
        return self.quality_rate > 0


@dataclass(frozen=True)
class FaultAction:
    """What to do to one request; `remaining_times` is the count left after it."""

    delay_ms: float = 0.0
    failure: Failure | None = None
    status: int | None = None
    retry_after: float | None = None
    retry_after_format: RetryAfterFormat = "seconds"
    error_body: ErrorBody = "openai"
    remaining_times: int | None = None
    #: How a successful chat answer is degraded (ignored when `failure` is set).
    reply: QualityReply | None = None
    #: The fixed score for a judge request, or None to compute it from the rubric.
    judge_score: float | None = None
    #: Pause between the tokens of a streamed answer.
    token_delay_ms: float = 0.0

    @property
    def label(self) -> str | None:
        """A short name for records: ``latency``, ``status:429``, ``latency+unknown``, or None."""
        parts = ["latency"] if self.delay_ms > 0 else []
        if self.failure == "status":
            parts.append(f"status:{self.status}")
        elif self.failure is not None:
            parts.append(self.failure)
        elif self.reply is not None:
            parts.append(self.reply)
        return "+".join(parts) or None


def decide_quality_reply(faults: Faults, roll: float) -> QualityReply | None:
    """Which degraded answer a uniform `roll` in [0, 1) picks (pure): refuse, unknown, uncited,
    invalid_json, off_schema.

    The rates split [0, 1) in that order, so they add up: refuse_rate 0.1 and unknown_rate
    0.2 degrade 30 % of answers, never one answer twice.
    """
    edge = 0.0
    kinds: tuple[tuple[QualityReply, float], ...] = (
        ("refuse", faults.refuse_rate),
        ("unknown", faults.unknown_rate),
        ("uncited", faults.uncited_rate),
        ("invalid_json", faults.invalid_json_rate),
        ("off_schema", faults.off_schema_rate),
    )
    for kind, rate in kinds:
        edge += rate
        if roll < edge:
            return kind
    return None


def decide_fault(
    faults: Faults,
    model: str | None,
    endpoint: Endpoint,
    roll: float,
    remaining_times: int | None,
    *,
    jitter_roll: float = 0.0,
    quality_roll: float = 1.0,
) -> FaultAction:
    """The fault for one request; `roll`, `jitter_roll`, `quality_roll` are draws in [0, 1).

    `quality_roll` picks the degraded answer (`decide_quality_reply`), on chat requests only.
    """
    untouched = FaultAction(remaining_times=remaining_times)
    if remaining_times == 0 or endpoint not in faults.endpoints:
        return untouched
    if faults.models is not None and model not in faults.models:
        return untouched
    delay_ms = faults.latency_ms + jitter_roll * faults.jitter_ms
    failures = faults.failures
    failure = failures[0] if failures and roll < faults.error_rate else None
    reply = decide_quality_reply(faults, quality_roll) if endpoint == "chat" else None
    judge_score = faults.judge_score if endpoint == "chat" else None
    paced = faults.token_delay_ms
    if delay_ms <= 0 and failure is None and reply is None and judge_score is None and not paced:
        return untouched
    return FaultAction(
        delay_ms=delay_ms,
        failure=failure,
        status=faults.status if failure == "status" else None,
        retry_after=faults.retry_after if failure == "status" else None,
        retry_after_format=faults.retry_after_format,
        error_body=faults.error_body,
        remaining_times=None if remaining_times is None else remaining_times - 1,
        reply=None if failure is not None else reply,
        judge_score=judge_score,
        token_delay_ms=paced,
    )
