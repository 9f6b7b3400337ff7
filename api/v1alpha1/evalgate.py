"""The built-in eval gate of a rollout (``spec.rollout.evalGate``) and its result in status.

Before any traffic, the controller runs the eval set stored in a ConfigMap (the
``promptctl eval`` format, docs/evals.md) against the canary and the stable version through
the service, and stops the rollout on a regression or a pass rate under ``minPassRate``
(docs/rollouts.md, "Eval gate"). Kept apart from :mod:`api.v1alpha1.types` (one topic per
module); :mod:`api.v1alpha1` re-exports both models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = ["CONFIG_MAP_KEY_PATTERN", "EvalGate", "EvalGateResult"]

#: A ConfigMap data key (Kubernetes: alphanumerics, '-', '_' and '.').
CONFIG_MAP_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
#: A ConfigMap name (a DNS subdomain).
_CONFIG_MAP_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class _Model(BaseModel):
    # The same configuration as api.v1alpha1.types' base (camelCase, strict, immutable).
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class EvalGate(_Model):
    """An eval set the canary must pass before it gets any traffic."""

    config_map: str = Field(
        pattern=_CONFIG_MAP_NAME_PATTERN,
        max_length=253,
        description="ConfigMap in the version's namespace that holds the eval set.",
    )
    key: str = Field(
        default="evalset.yaml",
        pattern=CONFIG_MAP_KEY_PATTERN,
        max_length=253,
        description="The ConfigMap key whose value is the eval set (YAML).",
    )
    min_pass_rate: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="The canary's (weighted) pass rate must be at least this; any case that "
        "passes on the stable version and fails on the canary stops the rollout too.",
    )
    timeout_seconds: int = Field(
        default=120,
        ge=10,
        le=600,
        description="Deadline of the whole eval run (waiting for the service included); "
        "running out fails the gate.",
    )


class EvalGateResult(_Model):
    """The outcome of the eval gate of this version (it runs once per start)."""

    result: Literal["Passed", "Failed"] = Field(description="Failed stops the rollout.")
    reason: str = Field(default="", max_length=1024, description="Why it failed, or a summary.")
    summary: str = Field(
        default="", max_length=1024, description="Pass rates and regressions in one line."
    )
    eval_set: str = Field(default="", max_length=600, description="configMap/key of the eval set.")
    digest: str = Field(default="", max_length=64, description="Fingerprint of the eval set.")
    baseline: str | None = Field(default=None, description="The stable version compared with.")
    pass_rate: float | None = Field(
        default=None, ge=0.0, le=1.0, description="The canary's weighted pass rate."
    )
    baseline_pass_rate: float | None = Field(
        default=None, ge=0.0, le=1.0, description="The stable version's weighted pass rate."
    )
    cases: int = Field(default=0, ge=0, description="Cases evaluated.")
    regressions: list[str] = Field(
        default_factory=list, max_length=50, description="Cases that pass on stable only."
    )
    report: str | None = Field(
        default=None, description="ConfigMap holding the full Markdown report (key report.md)."
    )
    time: str = Field(description="RFC 3339 time the gate decided.")
