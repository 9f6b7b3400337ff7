"""The rehearsal scenario file (docs/rehearse.md): its model, loading and the --speed maths.

`load_scenario` reads a scenario, its manifests and its questions, and raises
`ScenarioError` naming the file and the field for anything wrong. `build_rehearsal_manifest`
and `decide_timing` (pure) compress a scenario's time by ``--speed``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import yaml
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

from api.v1alpha1.types import DURATION_PATTERN, Phase, PromptVersion
from controller.durations import parse_duration
from fakemodel.faults import Faults
from rehearsal.notify import NotifyBehaviour

__all__ = [
    "MIN_INTERVAL_SECONDS",
    "MIN_WINDOW_SECONDS",
    "LoadedScenario",
    "ModelBehaviour",
    "Scenario",
    "ScenarioError",
    "Timing",
    "build_rehearsal_manifest",
    "decide_timing",
    "format_duration",
    "load_scenario",
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
            raise ValueError(message.replace("_rate", "Rate")) from None


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


class Scenario(BaseModel):
    """A scenario file, as written (paths still relative to it)."""

    model_config = _CONFIG

    manifests: list[str] = Field(min_length=1, max_length=20)
    corpus: Corpus | None = None
    traffic: Traffic
    models: dict[str, ModelBehaviour] = Field(default_factory=dict)
    feedback: dict[str, FeedbackBehaviour] = Field(default_factory=dict)
    seed: int = 0
    expect: dict[str, Phase] = Field(default_factory=dict)
    notify: NotifyBehaviour | None = None


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


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<top>"


def _read_yaml_documents(path: Path, what: str) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"{what}: cannot read {path}: {error.strerror or error}") from None
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        raise ScenarioError(f"{path}: not valid YAML: {error}") from None


def _resolve(base: Path, relative: str) -> Path:
    path = Path(relative).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def _read_manifest(path: Path, field: str) -> list[dict[str, Any]]:
    documents = _read_yaml_documents(path, field)
    if not documents:
        raise ScenarioError(f"{path} ({field}): holds no PromptVersion")
    for document in documents:
        try:
            PromptVersion.model_validate(document)
        except ValidationError as error:
            first = error.errors()[0]
            raise ScenarioError(
                f"{path} ({field}): not a valid PromptVersion: {_where(first['loc'])}: "
                f"{first['msg']}"
            ) from None
    return [dict(d) for d in documents]


def _read_questions(base: Path, questions: str | list[str]) -> list[str]:
    if isinstance(questions, list):
        return [q.strip() for q in questions]
    path = _resolve(base, questions)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ScenarioError(
            f"traffic.questions: cannot read {path}: {error.strerror or error}"
        ) from None
    found = [line.strip() for line in lines if line.strip()]
    if not found:
        raise ScenarioError(f"traffic.questions: {path} holds no question")
    return found


def load_scenario(path: Path) -> LoadedScenario:
    """Read and check a scenario and every file it names; ScenarioError says what is wrong."""
    documents = _read_yaml_documents(path, "scenario")
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise ScenarioError(f"{path}: a scenario is one YAML mapping (see docs/rehearse.md)")
    try:
        scenario = Scenario.model_validate(documents[0])
    except ValidationError as error:
        problems = "; ".join(
            f"{_where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in error.errors()
        )
        raise ScenarioError(f"{path}: {problems}") from None
    base = path.parent
    manifests: list[dict[str, Any]] = []
    for index, name in enumerate(scenario.manifests):
        manifests += _read_manifest(_resolve(base, name), f"manifests[{index}]")
    specs = [m["spec"] for m in manifests]
    prompts = sorted({s["prompt"] for s in specs})
    if len(prompts) != 1:
        raise ScenarioError(
            f"{path}: manifests: every version must be of one prompt (got {prompts})"
        )
    versions = [str(s["version"]) for s in specs]
    if len(set(versions)) != len(versions):
        raise ScenarioError(f"{path}: manifests: a version appears twice ({versions})")
    models = list(
        dict.fromkeys(
            name
            for s in specs
            for name in [s["model"]["name"], *(s["model"].get("fallbacks") or [])]
        )
    )
    for field, keys, known, noun in (
        ("models", scenario.models, models, "model used by the manifests"),
        ("feedback", scenario.feedback, versions, "version in the manifests"),
        ("expect", scenario.expect, versions, "version in the manifests"),
    ):
        for key in keys:
            if key not in known:
                raise ScenarioError(f"{path}: {field}.{key}: not a {noun} (those are {known})")
    corpus_dir = None
    if scenario.corpus is not None:
        corpus_dir = _resolve(base, scenario.corpus.dir)
        if not corpus_dir.is_dir():
            raise ScenarioError(f"{path}: corpus.dir: {corpus_dir} is not a folder")
    return LoadedScenario(
        path=path,
        scenario=scenario,
        manifests=manifests,
        questions=_read_questions(base, scenario.traffic.questions),
        prompt=prompts[0],
        versions=versions,
        models=models,
        corpus_dir=corpus_dir,
    )


# --- --speed --------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """Seconds as a CRD duration: whole seconds when exact, else milliseconds (pure)."""
    millis = max(1, math.ceil(seconds * 1000))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


@dataclass(frozen=True)
class Timing:
    """The compressed durations of one rehearsal, and what had to be clamped."""

    speed: float
    duration_seconds: float
    notes: tuple[str, ...]


def decide_timing(scenario: Scenario, speed: float) -> Timing:
    """Traffic duration divided by `speed` (pure)."""
    duration = parse_duration(scenario.traffic.duration) / speed
    return Timing(speed=speed, duration_seconds=duration, notes=())


def build_rehearsal_manifest(
    manifest: dict[str, Any], speed: float
) -> tuple[dict[str, Any], list[str]]:
    """`manifest` with its step pauses, analysis interval and window divided by `speed`
    (pure); intervals never below 1 s and windows never below 5 s (the notes say where)."""
    result = copy.deepcopy(manifest)
    name = f"{manifest['spec']['prompt']} {manifest['spec']['version']}"
    rollout = result["spec"].setdefault("rollout", {})
    notes: list[str] = []
    for step in rollout.get("steps") or []:
        if step.get("pause"):
            step["pause"] = format_duration(parse_duration(step["pause"]) / speed)
    analysis = rollout.setdefault("analysis", {})
    for key, default, floor in (
        ("interval", "10s", MIN_INTERVAL_SECONDS),
        ("window", "1m", MIN_WINDOW_SECONDS),
    ):
        original = parse_duration(analysis.get(key, default))
        scaled = original / speed
        if scaled < floor and scaled < original:
            notes.append(
                f"{name}: analysis.{key} {analysis.get(key, default)} / {speed:g} = "
                f"{format_duration(scaled)}, kept at {format_duration(min(original, floor))}"
            )
            scaled = min(original, floor)
        if key in analysis or speed != 1:
            analysis[key] = format_duration(scaled)
    return result, notes
