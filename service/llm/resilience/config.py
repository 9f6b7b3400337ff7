"""The resilience layer's configuration and its observer hooks (no behaviour).

The configuration models (``ResilienceConfig``, and ``BreakerConfig`` in
:mod:`service.llm.resilience.breaker`) are the one place where the knobs' defaults, bounds and
descriptions live. Each knob that an operator may set names its environment variable as its
``validation_alias`` (``MODEL_MAX_ATTEMPTS`` → ``max_attempts``); ``service.settings.Settings``
reads those variables into its nested ``resilience`` field, so there is no mapping by hand.
Code builds the models by field name (``ResilienceConfig(max_attempts=2)``).
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.llm.resilience.breaker import BreakerConfig, BreakerState

__all__ = [
    "ModelLimit",
    "ResilienceConfig",
    "ResilienceObserver",
    "SilentObserver",
    "build_variable_paths",
]


class ModelLimit(BaseModel):
    """Rate limits of one model; 0 is unlimited."""

    model_config = ConfigDict(frozen=True)

    rpm: float = Field(default=0, ge=0)
    tpm: float = Field(default=0, ge=0)


class ResilienceConfig(BaseModel):
    """Every knob of the resilience layer (docs/resilience.md, docs/configuration.md)."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)

    max_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        validation_alias="model_max_attempts",
        description="Attempts per model, the first included.",
    )
    attempt_timeout: float = Field(
        default=10.0,
        gt=0,
        le=600,
        validation_alias="model_attempt_timeout_seconds",
        description="Longest single upstream attempt.",
    )
    max_deadline: float = Field(
        default=60.0,
        gt=0,
        le=600,
        validation_alias="model_max_deadline_seconds",
        description="Upper bound on a version's timeoutSeconds.",
    )
    #: Shortest time worth starting an attempt with (not an operator's knob).
    min_attempt: float = 0.05
    backoff_base: float = Field(
        default=0.2,
        ge=0,
        validation_alias="model_backoff_base_seconds",
        description="First backoff ceiling; doubles each attempt (full jitter).",
    )
    backoff_cap: float = Field(
        default=5.0,
        ge=0,
        validation_alias="model_backoff_max_seconds",
        description="Backoff ceiling cap.",
    )
    #: Retry-After reported to callers when no upstream gave one (not an operator's knob).
    default_retry_after: float = 1.0
    max_throttled_attempts: int = Field(
        default=8,
        ge=1,
        le=50,
        validation_alias="model_max_throttled_attempts",
        description="Attempts per model that may end in 429 (back-pressure), on top of "
        "MODEL_MAX_ATTEMPTS; each waits at least the upstream's Retry-After.",
    )
    retry_after_max: float = Field(
        default=3600.0,
        ge=1,
        le=86_400,
        validation_alias="model_retry_after_max_seconds",
        description="Longest upstream Retry-After honoured or passed on to callers; "
        "longer values are cut to it.",
    )
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    budget_ratio: float = Field(
        default=0.2,
        ge=0,
        le=10,
        validation_alias="model_retry_budget_ratio",
        description="Retries allowed per first attempt, per model.",
    )
    #: Refill of the retry budget per second (not an operator's knob).
    budget_min_per_second: float = 1.0
    budget_reserve: float = Field(
        default=10.0,
        ge=0,
        validation_alias="model_retry_budget_reserve",
        description="Retries always available to a quiet service.",
    )
    rpm: float = Field(
        default=0.0,
        ge=0,
        validation_alias="model_rpm",
        description="Requests per minute per model; 0 is unlimited.",
    )
    tpm: float = Field(
        default=0.0,
        ge=0,
        validation_alias="model_tpm",
        description="Tokens per minute per model (estimated); 0 is unlimited.",
    )
    limits: dict[str, ModelLimit] = Field(
        default_factory=dict,
        validation_alias="model_limits",
        description='Per-model limits, e.g. {"gpt-4o-mini": {"rpm": 500, "tpm": 200000}}.',
    )

    @field_validator("limits", mode="before")
    @classmethod
    def _pairs_are_limits(cls, value: Any) -> Any:
        """``{model: (rpm, tpm)}`` is accepted too."""
        if isinstance(value, dict):
            return {
                model: {"rpm": limit[0], "tpm": limit[1]} if isinstance(limit, tuple) else limit
                for model, limit in value.items()
            }
        return value

    def limits_of(self, model: str) -> tuple[float, float]:
        """(rpm, tpm) of ``model``: its own limits, else the defaults for every model."""
        limit = self.limits.get(model)
        return (self.rpm, self.tpm) if limit is None else (limit.rpm, limit.tpm)


def build_variable_paths(model: type[BaseModel]) -> dict[str, tuple[str, ...]]:
    """Each environment variable (lower case) of ``model`` and its nested models → the path
    of field names it sets, e.g. ``breaker_min_calls`` → ``("breaker", "min_calls")`` (pure)."""
    paths: dict[str, tuple[str, ...]] = {}
    for name, field in model.model_fields.items():
        if isinstance(field.validation_alias, str):
            paths[field.validation_alias] = (name,)
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            for variable, path in build_variable_paths(field.annotation).items():
                paths[variable] = (name, *path)
    return paths


class ResilienceObserver(Protocol):
    """Hooks for metrics and logs; every method must be cheap and must not raise."""

    def attempt(self, model: str, outcome: str) -> None:
        """An upstream attempt ended: "ok", an HTTP status, or a failure kind."""

    def retry(self, model: str, wait: float) -> None:
        """A retry will follow after `wait` seconds."""

    def breaker(self, model: str, state: BreakerState) -> None:
        """A model's breaker is now in `state`."""

    def rate_limit(self, model: str, waited: float, rejected: bool) -> None:
        """A request waited for (or was refused) rate-limit capacity."""

    def throttled(self, model: str, retry_after: float | None) -> None:
        """The upstream answered 429 (with its capped Retry-After, if any)."""


class SilentObserver:
    """An observer that records nothing."""

    def attempt(self, model: str, outcome: str) -> None:
        pass

    def retry(self, model: str, wait: float) -> None:
        pass

    def breaker(self, model: str, state: BreakerState) -> None:
        pass

    def rate_limit(self, model: str, waited: float, rejected: bool) -> None:
        pass

    def throttled(self, model: str, retry_after: float | None) -> None:
        pass
