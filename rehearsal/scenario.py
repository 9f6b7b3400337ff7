"""The rehearsal scenario file (docs/rehearse.md): its model, as pydantic validates it.

A scenario names its manifests, corpus, traffic, fake-model behaviour per model, simulated
feedback per version, a seed and the expected outcome; camelCase keys in the file. Reading
it with its files is `rehearsal.scenario_loading.load_scenario`; compressing its time by
``--speed`` is `rehearsal.speed`. `ScenarioError` names the file and field of any problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pydantic import (
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from api.v1alpha1.types import DURATION_PATTERN, Phase
from controller.durations import parse_duration
from fakemodel.faults import Faults
from rehearsal.notify import NotifyBehaviour

__all__ = [
    "MAX_RPS",
    "MIN_INTERVAL_SECONDS",
    "MIN_WINDOW_SECONDS",
    "Corpus",
    "Expectation",
    "FeedbackBehaviour",
    "LoadedScenario",
    "ModelBehaviour",
    "Scenario",
    "ScenarioError",
    "Traffic",
]

#: Analyses more often than the 1 s scrape interval see nothing new.
MIN_INTERVAL_SECONDS = 1.0
#: rate() over Prometheus' 1 s scrapes needs a few samples: windows are never shorter.
MIN_WINDOW_SECONDS = 5.0
#: The rehearsal's own load stays bounded on a laptop (and on a shared CI runner).
MAX_RPS = 100.0

_CONFIG = ConfigDict(
    extra="forbid",
    frozen=True,
    alias_generator=AliasGenerator(validation_alias=to_camel),
    allow_inf_nan=False,
)


class ScenarioError(Exception):
    """The scenario (or a file it names) is unusable; the message names file and field."""


class ModelBehaviour(BaseModel):
    """How the fake model behaves for one model name (camelCase keys in the file)."""

    model_config = _CONFIG

    error_rate: float = Field(0.0, ge=0, le=1)
    error_status: int = Field(500, ge=400, le=599)
    latency_ms: float = Field(0.0, ge=0, le=60_000)
    jitter_ms: float = Field(0.0, ge=0, le=60_000)
    unknown_rate: float = Field(0.0, ge=0, le=1)
    uncited_rate: float = Field(0.0, ge=0, le=1)
    refuse_rate: float = Field(0.0, ge=0, le=1)
    judge_score: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _fits_the_fake_model(self) -> Self:
        self.to_faults()  # the fake model's own rules (e.g. the rates add up to at most 1)
        return self

    def to_faults(self) -> Faults:
        """The fake model's faults for this model (`POST /admin/faults/models/{model}`)."""
        raw: dict[str, Any] = {
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "unknown_rate": self.unknown_rate,
            "uncited_rate": self.uncited_rate,
            "refuse_rate": self.refuse_rate,
            "judge_score": self.judge_score,
        }
        if self.error_rate > 0:
            raw |= {"status": self.error_status, "error_rate": self.error_rate}
        try:
            return Faults.model_validate(raw)
        except ValidationError as error:
            message = error.errors()[0]["msg"].removeprefix("Value error, ")
            raise ValueError(re.sub(r"_([a-z])", lambda m: m[1].upper(), message)) from None


class Corpus(BaseModel):
    """Documents indexed before the rehearsal starts."""

    model_config = _CONFIG

    collection: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    dir: str = Field(min_length=1)


class Traffic(BaseModel):
    """The simulated callers."""

    model_config = _CONFIG

    rps: float = Field(gt=0, le=MAX_RPS)
    users: int = Field(100, ge=1, le=10_000_000)
    duration: str = Field(pattern=DURATION_PATTERN)
    questions: str | list[str] = Field(min_length=1)

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError("must be longer than 0s")
        return value

    @field_validator("questions")
    @classmethod
    def _non_blank(cls, value: str | list[str]) -> str | list[str]:
        items = [value] if isinstance(value, str) else value
        if any(not item.strip() for item in items):
            raise ValueError("a question (or the file name) is blank")
        return value


class FeedbackBehaviour(BaseModel):
    """Simulated ratings of one version's answers."""

    model_config = _CONFIG

    rate: float = Field(ge=0, le=1, description="Fraction of answers rated.")
    negative: float = Field(0.0, ge=0, le=1, description="Fraction of ratings that are -1.")


class Expectation(BaseModel):
    """What a version must end as: its phase and, optionally, its highest live weight."""

    model_config = _CONFIG

    phase: Phase
    max_weight: int | None = Field(
        None, ge=0, le=100, description="The highest live weight it may have had."
    )

    def to_json(self) -> str | dict[str, Any]:
        """``RolledBack``, or ``{"phase": "RolledBack", "maxWeight": 0}``."""
        if self.max_weight is None:
            return self.phase.value
        return {"phase": self.phase.value, "maxWeight": self.max_weight}


class Scenario(BaseModel):
    """A scenario file, as written (paths still relative to it)."""

    model_config = _CONFIG

    manifests: list[str] = Field(min_length=1, max_length=20)
    corpus: Corpus | None = None
    traffic: Traffic
    models: dict[str, ModelBehaviour] = Field(default_factory=dict)
    feedback: dict[str, FeedbackBehaviour] = Field(default_factory=dict)
    seed: int = 0
    #: Per version: a phase, or ``{phase, maxWeight}``.
    expect: dict[str, Expectation] = Field(default_factory=dict)
    notify: NotifyBehaviour | None = None

    @field_validator("expect", mode="before")
    @classmethod
    def _phases_are_expectations(cls, expect: Any) -> Any:
        """``{"1.1.0": "RolledBack"}`` is ``{"1.1.0": {"phase": "RolledBack"}}``."""
        if not isinstance(expect, dict):
            return expect
        return {k: {"phase": v} if isinstance(v, str) else v for k, v in expect.items()}


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with its files read."""

    path: Path
    scenario: Scenario
    #: PromptVersion objects; the first is the stable version.
    manifests: list[dict[str, Any]]
    questions: list[str]
    prompt: str
    versions: list[str]
    #: Every model name the manifests use (primary and fallbacks).
    models: list[str]
    corpus_dir: Path | None
