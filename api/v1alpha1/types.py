"""The PromptVersion resource (``promptrollouts.io/v1alpha1``) as pydantic models.

These models are the single source of truth for the contract: the CRD's
openAPIV3Schema in ``crds/promptversion.yaml`` is generated from them
(``make crds``), and a test fails when the two drift. Field names are
snake_case in Python and camelCase on the wire (pydantic aliases).

Rules a structural schema cannot express (cross-field checks such as "a
default must satisfy its own constraints") live in validators here; the
controller marks a PromptVersion that breaks them ``Invalid``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from api.v1alpha1.evalgate import EvalGate, EvalGateResult
from api.v1alpha1.output import OutputContract
from api.v1alpha1.tools import DEFAULT_MAX_TOOL_ROUNDS, Tool

__all__ = [
    "API_VERSION",
    "DEFAULT_EMPTY_ANSWER",
    "DNS_LABEL_PATTERN",
    "DURATION_PATTERN",
    "GROUP",
    "KIND",
    "PAUSE_PATTERN",
    "RESERVED_VARIABLES",
    "SEMVER_PATTERN",
    "VERSION",
    "Analysis",
    "Condition",
    "Guardrails",
    "Judge",
    "MetricCheck",
    "ModelSettings",
    "ObjectMeta",
    "Phase",
    "PromptTemplate",
    "PromptVersion",
    "PromptVersionSpec",
    "PromptVersionStatus",
    "ResponseCache",
    "Retrieval",
    "Rollout",
    "RolloutStep",
    "Scalar",
    "ShadowStep",
    "StepKind",
    "Variable",
    "VariableType",
    "Webhook",
    "WebhookResult",
    "WebhookType",
    "value_matches_type",
]

GROUP = "promptrollouts.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "PromptVersion"

DEFAULT_EMPTY_ANSWER = "Not covered by policy."
#: Names the service fills in itself; a PromptVersion may not declare them.
RESERVED_VARIABLES = frozenset({"question", "context"})

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: semver.org's recommended expression (no leading "v").
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
#: Prometheus-style durations: "30s", "5m", "1h30m", "250ms".
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
#: A canary step's pause: a duration, or "manual".
PAUSE_PATTERN = r"^(([0-9]+(ms|s|m|h))+|manual)$"
VARIABLE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
COLLECTION_PATTERN = r"^[A-Za-z0-9_-]{1,255}$"

#: A variable value: the JSON scalars a request may carry. Strict, so "1" never becomes 1.
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, examples=["30s", "5m"])]


class _Model(BaseModel):
    """Base: camelCase aliases, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class VariableType(StrEnum):
    """The JSON type a template variable accepts."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"


def value_matches_type(value: object, kind: VariableType) -> bool:
    """Whether a JSON scalar is of a variable type (bool is never a number)."""
    if kind is VariableType.STRING:
        return isinstance(value, str)
    if kind is VariableType.BOOLEAN:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is VariableType.INTEGER:
        return isinstance(value, int)
    return isinstance(value, int | float)


class Variable(_Model):
    """A template variable a caller may (or must) supply."""

    name: str = Field(
        pattern=VARIABLE_NAME_PATTERN,
        max_length=63,
        description="Name used in the templates; `question` and `context` are reserved.",
    )
    type: VariableType = Field(default=VariableType.STRING, description="JSON type of the value.")
    required: bool = Field(default=False, description="The request must supply a value.")
    default: Scalar | None = Field(default=None, description="Value used when none is supplied.")
    enum: list[Scalar] | None = Field(
        default=None, min_length=1, description="The only values allowed."
    )
    pattern: str | None = Field(
        default=None, description="Regular expression a string value must match (full match)."
    )
    minimum: float | None = Field(default=None, description="Smallest allowed number.")
    maximum: float | None = Field(default=None, description="Largest allowed number.")
    max_length: int | None = Field(default=None, ge=1, description="Longest allowed string.")
    description: str = Field(default="", description="What the variable is for.")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_VARIABLES:
            raise ValueError(f"'{name}' is reserved: the service provides it")
        return name

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"pattern does not compile: {error}") from error
        return pattern

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        numeric = self.type in (VariableType.INTEGER, VariableType.NUMBER)
        if not numeric and (self.minimum is not None or self.maximum is not None):
            raise ValueError("minimum/maximum apply to integer and number variables only")
        if self.type is not VariableType.STRING and (
            self.pattern is not None or self.max_length is not None
        ):
            raise ValueError("pattern/maxLength apply to string variables only")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum is greater than maximum")
        if self.required and self.default is not None:
            raise ValueError("a required variable cannot have a default")
        for value in self.enum or []:
            if not value_matches_type(value, self.type):
                raise ValueError(f"enum value {value!r} is not of type {self.type.value}")
        if self.default is not None:
            if not value_matches_type(self.default, self.type):
                raise ValueError(f"default {self.default!r} is not of type {self.type.value}")
            problem = _violation(self, self.default)
            if problem:
                raise ValueError(f"default {self.default!r} {problem}")
        return self


def _violation(variable: Variable, value: Scalar) -> str:
    """Why a value of the right type breaks a variable's constraints ("" if it does not)."""
    if variable.enum is not None and value not in variable.enum:
        return f"is not one of {variable.enum}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if variable.minimum is not None and value < variable.minimum:
            return f"is less than minimum {variable.minimum}"
        if variable.maximum is not None and value > variable.maximum:
            return f"is greater than maximum {variable.maximum}"
    if isinstance(value, str):
        if variable.max_length is not None and len(value) > variable.max_length:
            return f"is longer than maxLength {variable.max_length}"
        if variable.pattern is not None and re.fullmatch(variable.pattern, value) is None:
            return f"does not match pattern {variable.pattern!r}"
    return ""


class PromptTemplate(_Model):
    """Chat messages as sandboxed Jinja2 templates (strict undefined)."""

    system: str = Field(min_length=1, description="System message template.")
    user: str = Field(
        min_length=1,
        description="User message template; `question` and `context` are provided by the service.",
    )


class ModelSettings(_Model):
    """Which model answers, and how."""

    name: str = Field(min_length=1, max_length=128, description="Model name sent upstream.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(default=512, ge=1, le=128_000, description="Completion token cap.")
    timeout_seconds: float = Field(
        default=30.0,
        ge=0.1,
        le=600.0,
        description="Total deadline for one answer, retries included.",
    )
    fallbacks: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, description="Models tried in order when the primary fails."
    )


class Retrieval(_Model):
    """Where context comes from, and how much of it."""

    collection: str = Field(pattern=COLLECTION_PATTERN, description="Vector store collection.")
    top_k: int = Field(default=3, ge=1, le=50, description="Passages retrieved per question.")
    min_score: float = Field(
        default=0.3,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity below which a passage is dropped.",
    )
    max_context_tokens: int = Field(
        default=1500, ge=16, le=200_000, description="Token budget of the CONTEXT block."
    )
    empty_answer: str = Field(
        default=DEFAULT_EMPTY_ANSWER,
        min_length=1,
        description="Answer given, without calling a model, when nothing is retrieved.",
    )


class Guardrails(_Model):
    """Checks applied to every answer."""

    forbidden_phrases: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Case-insensitive phrases that turn an answer into a refusal.",
    )
    require_citations: bool = Field(
        default=False, description="An answer citing no retrieved passage becomes `unknown`."
    )
    refusal_answer: str = Field(
        default="I can't help with that.",
        min_length=1,
        description="Answer given when a guardrail trips.",
    )


class ResponseCache(_Model):
    """Reuse the model's reply to an identical request (opt-in)."""

    enabled: bool = Field(default=False, description="Serve repeated requests from the cache.")
    ttl_seconds: int = Field(
        default=300, ge=1, le=86_400, description="How long a cached reply may be reused."
    )


class StepKind(StrEnum):
    """What a rollout step does with the canary (``status.stepKind``)."""

    CANARY = "Canary"
    SHADOW = "Shadow"


class ShadowStep(_Model):
    """Run the canary in the background on `percent` % of requests, for `duration`."""

    percent: int = Field(
        ge=1,
        le=100,
        description="Percent of requests the canary also answers in the background (never "
        "returned to the client).",
    )
    duration: Duration = Field(description="How long the shadow step lasts (e.g. `2m`).")


class RolloutStep(_Model):
    """One step: send `weight` percent of live traffic (then wait), or shadow the canary."""

    weight: int | None = Field(
        default=None, ge=1, le=100, description="Percent of live traffic for the canary."
    )
    pause: str | None = Field(
        default=None,
        pattern=PAUSE_PATTERN,
        description="How long to hold this step (e.g. `5m`), or `manual` to wait for promotion "
        "(weight steps only).",
    )
    shadow: ShadowStep | None = Field(
        default=None,
        description="A shadow step: the canary gets no live traffic, and answers `percent` % "
        "of requests in the background (docs/rollouts.md, Shadow steps).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.weight) != has(self.shadow)",
                    "message": "a step has either weight or shadow",
                },
                {
                    "rule": "!has(self.shadow) || !has(self.pause)",
                    "message": "a shadow step lasts its duration: it takes no pause",
                },
            ]
        }
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.weight is None) == (self.shadow is None):
            raise ValueError("a step has either weight or shadow (exactly one of them)")
        if self.shadow is not None and self.pause is not None:
            raise ValueError("a shadow step lasts its duration: it takes no pause")
        return self

    @property
    def kind(self) -> StepKind:
        """Shadow or Canary (a weight step)."""
        return StepKind.SHADOW if self.shadow is not None else StepKind.CANARY

    @property
    def live_weight(self) -> int:
        """The canary's live weight during this step (0 in a shadow step)."""
        return self.weight or 0


class MetricCheck(_Model):
    """A custom PromQL check: the query's single value must lie within [min, max]."""

    name: str = Field(pattern=VARIABLE_NAME_PATTERN, max_length=63, description="Check name.")
    query: str = Field(
        min_length=1,
        max_length=4096,
        description="PromQL returning one value; `{{prompt}}`, `{{version}}` and `{{window}}` "
        "are replaced before it runs.",
    )
    min: float | None = Field(default=None, description="Smallest acceptable value.")
    max: float | None = Field(default=None, description="Largest acceptable value.")

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError(f"check '{self.name}' needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"check '{self.name}': min is greater than max")
        return self


class Judge(_Model):
    """A sampled online judge: a model scores a fraction of live answers 0..1 in the background."""

    model: str = Field(min_length=1, max_length=253, description="Model that judges answers.")
    rubric: str = Field(
        min_length=1,
        max_length=4000,
        description="What a good answer is; the judge scores each sampled answer against it.",
    )
    sample_rate: float = Field(
        default=0.1, ge=0.0001, le=1.0, description="Fraction of live answers that are judged."
    )
    max_per_minute: int = Field(
        default=60, ge=1, le=6000, description="Upper bound on judge calls per minute (cost)."
    )


class Analysis(_Model):
    """Health checks run against Prometheus while a canary is live."""

    interval: Duration = Field(default="10s", description="How often to analyse.")
    window: Duration = Field(default="1m", description="Range the metrics are computed over.")
    min_requests: int = Field(
        default=20, ge=1, description="Fewer requests in the window make the result inconclusive."
    )
    max_error_rate: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Largest acceptable error ratio."
    )
    max_p95_latency_ms: int = Field(
        default=5000, ge=1, description="Largest acceptable 95th percentile latency."
    )
    max_ttft_p95_ms: int | None = Field(
        default=None,
        ge=1,
        description="Largest acceptable 95th percentile time to first token of streamed "
        "answers (skipped while the canary served no stream in the window).",
    )
    max_error_rate_increase: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Largest acceptable error ratio above the stable version's, same window.",
    )
    max_p95_latency_ratio: float | None = Field(
        default=None,
        ge=1.0,
        description="Largest acceptable p95 latency as a multiple of the stable version's.",
    )
    failure_limit: int = Field(
        default=2, ge=1, description="Consecutive failed analyses that trigger a rollback."
    )
    error_limit: int = Field(
        default=3,
        ge=1,
        description="Consecutive analyses Prometheus could not answer before a rollback "
        "(the weight is held until then).",
    )
    checks: list[MetricCheck] = Field(
        default_factory=list,
        max_length=10,
        description="Custom PromQL checks, all of which must pass.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    max_unknown_rate_increase: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Largest acceptable rise of the 'unknown' answer rate over the stable "
        "version's, same window (sequential test).",
    )
    max_refused_rate_increase: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Largest acceptable rise of the refused answer rate over the stable "
        "version's, same window (sequential test).",
    )
    min_feedback_score: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="Smallest acceptable mean user feedback score (-1..1).",
    )
    max_feedback_score_drop: float | None = Field(
        default=None,
        ge=0.0,
        le=2.0,
        description="Largest acceptable drop of the mean feedback score below the stable "
        "version's (sequential test).",
    )
    min_judge_score: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Smallest acceptable mean judge score (0..1)."
    )
    max_judge_score_drop: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Largest acceptable drop of the mean judge score below the stable "
        "version's (sequential test).",
    )
    min_quality_samples: int = Field(
        default=50,
        ge=1,
        description="Fewer quality samples (answers, feedback or judgements) per version make "
        "a quality check inconclusive.",
    )
    quality_confidence: float = Field(
        default=0.95,
        ge=0.5,
        le=0.9999,
        description="Confidence a quality regression must reach before it fails the analysis.",
    )
    judge: Judge | None = Field(
        default=None, description="Optional sampled online judge of live answers."
    )


class WebhookType(StrEnum):
    """When a webhook is called (as in Flagger)."""

    PRE_ROLLOUT = "pre-rollout"
    CONFIRM_ROLLOUT = "confirm-rollout"
    CONFIRM_PROMOTION = "confirm-promotion"
    POST_ROLLOUT = "post-rollout"
    ROLLBACK = "rollback"


class Webhook(_Model):
    """A gate or a notice: a signed JSON POST at one point of the rollout."""

    name: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63, description="Webhook name.")
    type: WebhookType = Field(description="When it is called, and what its answer does.")
    url: str = Field(
        pattern=r"^https?://[^\s/?#]+[^\s]*$",
        max_length=2048,
        description="http(s) URL the JSON body is POSTed to.",
    )
    timeout_seconds: int = Field(
        default=10, ge=1, le=60, description="Deadline of one call, retries included."
    )
    metadata: dict[str, Annotated[str, Field(max_length=1024)]] = Field(
        default_factory=dict,
        max_length=32,
        description="Strings passed to the webhook as `metadata`.",
    )


def _default_steps() -> list[RolloutStep]:
    return [RolloutStep(weight=10, pause="1m"), RolloutStep(weight=50, pause="1m")]


class Rollout(_Model):
    """How traffic moves to this version."""

    steps: list[RolloutStep] = Field(
        default_factory=_default_steps,
        max_length=20,
        description="Canary steps; after the last one the version is promoted to 100%.",
    )
    analysis: Analysis = Field(default_factory=Analysis, description="Automatic rollback checks.")
    max_shadow_per_minute: int = Field(
        default=60,
        ge=1,
        le=6000,
        description="Upper bound on this version's shadow answers per minute, per service "
        "worker (cost); more requests are not shadowed (counted as over_budget).",
    )
    webhooks: list[Webhook] = Field(
        default_factory=list,
        max_length=20,
        description="Gates and notices called during the rollout (docs/rollouts.md, Gates).",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            # A real API server refuses duplicate keys of a map list itself; the rule says why.
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(w, self.exists_one(x, x.name == w.name))",
                    "message": "webhook names must be unique",
                }
            ],
        },
    )

    eval_gate: EvalGate | None = Field(
        default=None,
        description="An eval set (ConfigMap) the canary must pass before any traffic "
        "(docs/rollouts.md, Eval gate).",
    )

    @field_validator("webhooks")
    @classmethod
    def _unique_webhooks(cls, webhooks: list[Webhook]) -> list[Webhook]:
        names = [hook.name for hook in webhooks]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"webhook names must be unique, repeated: {', '.join(twice)}")
        return webhooks

    @field_validator("steps")
    @classmethod
    def _weights_increase(cls, steps: list[RolloutStep]) -> list[RolloutStep]:
        kinds = [step.kind for step in steps]
        for index, (earlier, later) in enumerate(pairwise(kinds)):
            if earlier is StepKind.CANARY and later is StepKind.SHADOW:
                raise ValueError(
                    f"step {index + 2} is a shadow step after a weight step: shadow steps "
                    "come before every weight step"
                )
        weights = [step.weight for step in steps if step.weight is not None]
        if any(later <= earlier for earlier, later in pairwise(weights)):
            raise ValueError(f"step weights must strictly increase, got {weights}")
        return steps


class PromptVersionSpec(_Model):
    """One immutable version of a prompt."""

    prompt: str = Field(
        pattern=DNS_LABEL_PATTERN, max_length=63, description="Logical prompt name (DNS label)."
    )
    version: str = Field(
        pattern=SEMVER_PATTERN, max_length=64, description="Semantic version, unique per prompt."
    )
    owner: str = Field(min_length=1, max_length=253, description="Team or person responsible.")
    changelog: str = Field(default="", description="What changed in this version, and why.")
    template: PromptTemplate = Field(description="The chat messages.")
    variables: list[Variable] = Field(
        default_factory=list,
        max_length=64,
        description="Variables the templates use.",
        # The API server rejects two variables with one name, as the validator below does.
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    model: ModelSettings = Field(description="The model and its parameters.")
    retrieval: Retrieval | None = Field(
        default=None, description="Retrieval settings; omit for prompts without context."
    )
    guardrails: Guardrails = Field(default_factory=Guardrails, description="Answer checks.")
    cache: ResponseCache = Field(
        default_factory=ResponseCache,
        description="Response cache keyed by version, rendered messages and model parameters.",
    )
    rollout: Rollout = Field(default_factory=Rollout, description="Progressive delivery.")
    output: OutputContract | None = Field(
        default=None, description="Output contract: the answer is JSON meeting a schema."
    )
    tools: list[Tool] = Field(
        default_factory=list,
        max_length=32,
        description="HTTP tools offered to the model (api/v1alpha1/tools.py, docs/prompts.md).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    max_tool_rounds: int = Field(
        default=DEFAULT_MAX_TOOL_ROUNDS,
        ge=1,
        le=10,
        description="Most rounds of tool calls per answer before the model must answer.",
    )

    @field_validator("tools")
    @classmethod
    def _unique_tool_names(cls, tools: list[Tool]) -> list[Tool]:
        names = [tool.name for tool in tools]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"tool {twice[0]!r} is declared twice")
        return tools

    @field_validator("variables")
    @classmethod
    def _unique_names(cls, variables: list[Variable]) -> list[Variable]:
        seen: set[str] = set()
        for variable in variables:
            if variable.name in seen:
                raise ValueError(f"variable '{variable.name}' is declared twice")
            seen.add(variable.name)
        return variables

    def variable(self, name: str) -> Variable | None:
        """The declared variable called `name`, if any."""
        return next((v for v in self.variables if v.name == name), None)


class Phase(StrEnum):
    """Where a PromptVersion is in its life; written by the controller."""

    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    PROMOTED = "Promoted"
    STABLE = "Stable"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    SUPERSEDED = "Superseded"
    INVALID = "Invalid"


class Condition(_Model):
    """A Kubernetes-style condition (metav1.Condition)."""

    type: str = Field(min_length=1, max_length=316)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(default="", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: str | None = Field(default=None, description="RFC 3339 time.")
    observed_generation: int | None = Field(default=None, ge=0)


class PromptVersionStatus(_Model):
    """Observed state, written by the controller through the status subresource."""

    phase: Phase | None = Field(default=None, description="Lifecycle phase.")
    weight: int | None = Field(default=None, ge=0, le=100, description="Percent of traffic.")
    step_index: int | None = Field(default=None, ge=0, description="Current rollout step.")
    step_kind: StepKind | None = Field(
        default=None, description="Kind of the current step: Canary (live weight) or Shadow."
    )
    shadow_percent: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Percent of requests the service shadows to this version (its shadow "
        "step's); unset outside a shadow step.",
    )
    shadow_samples: int | None = Field(
        default=None,
        ge=0,
        description="Shadow answers of this version in the window of its latest shadow analysis.",
    )
    step_started_at: str | None = Field(
        default=None, description="RFC 3339 time the current step (and its pause) began."
    )
    consecutive_failures: int = Field(default=0, ge=0, description="Failed analyses in a row.")
    consecutive_errors: int = Field(
        default=0, ge=0, description="Analyses in a row that Prometheus could not answer."
    )
    handled_request: str | None = Field(
        default=None, description="The last manual request (annotation) the controller acted on."
    )
    conditions: list[Condition] = Field(default_factory=list)
    message: str | None = Field(default=None, description="Human-readable detail of the phase.")
    observed_generation: int | None = Field(default=None, ge=0)
    last_analysis: dict[str, Any] | None = Field(
        default=None, description="Measured values, queries and verdict of the latest analysis."
    )
    quality: str | None = Field(
        default=None,
        description="The quality checks' verdict and its reason in one line, from the latest "
        "analysis that measured them (e.g. 'Failed: unknown rate 31 % vs 12 % stable, ...').",
    )
    gates: list[WebhookResult] = Field(
        default_factory=list, description="The latest outcome of each webhook, by name."
    )
    eval_gate: EvalGateResult | None = Field(
        default=None, description="The eval gate's outcome for this version's latest start."
    )


class WebhookResult(_Model):
    """The latest outcome of one webhook of this version."""

    name: str = Field(description="The webhook's name.")
    type: WebhookType = Field(description="The webhook's type.")
    result: Literal["Succeeded", "Failed"] = Field(
        description="Succeeded: a 2xx answer; Failed: anything else (a gate holds or stops)."
    )
    message: str = Field(default="", max_length=1024, description="HTTP status or error.")
    time: str = Field(description="RFC 3339 time of the call.")


class ObjectMeta(BaseModel):
    """The parts of Kubernetes object metadata the project reads; the rest passes through."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class PromptVersion(_Model):
    """A complete PromptVersion object, as `kubectl apply` sends it."""

    api_version: Literal["promptrollouts.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["PromptVersion"]
    metadata: ObjectMeta
    spec: PromptVersionSpec
    status: PromptVersionStatus | None = None
