"""Shadow steps (pure): what a step writes to status, and how a shadow step is analysed.

During a shadow step the canary's live weight is 0 and ``status.shadowPercent`` tells the
service to run it in the background on that share of requests (docs/rollouts.md, Shadow
steps). The analysis of a shadow step reads the canary's ``mode="shadow"`` metrics and
compares them with the stable version's live ones, with the same checks and statistics,
less those that need what a shadow answer never gets: users' feedback, the online judge
(it grades answers sent) and custom PromQL checks (written against the live metrics).
"""

from __future__ import annotations

from typing import Any, Literal

from api.v1alpha1 import Analysis, RolloutStep, StepKind
from controller.versions import VersionView

__all__ = [
    "LIVE",
    "SHADOW",
    "Mode",
    "build_shadow_analysis",
    "decide_step_status",
    "step_mode",
]

#: The ``mode`` of a measurement: the canary's live answers, or its shadow answers.
Mode = Literal["live", "shadow"]
LIVE: Mode = "live"
SHADOW: Mode = "shadow"

#: Analysis fields a shadow step cannot measure (no user sees, rates or judges a shadow answer).
_LIVE_ONLY_FIELDS = (
    "min_feedback_score",
    "max_feedback_score_drop",
    "min_judge_score",
    "max_judge_score_drop",
)


def decide_step_status(step: RolloutStep | None) -> dict[str, Any]:
    """The status fields (snake_case) of being at `step`: its kind and its shadow share.

    None (no step: promoted, rolled back, ...) clears the shadow share, so the service
    stops shadowing the version at once.
    """
    if step is None:
        return {"shadow_percent": None}
    percent = step.shadow.percent if step.shadow is not None else None
    return {"step_kind": step.kind, "shadow_percent": percent}


def step_mode(view: VersionView) -> Mode:
    """Whether `view`'s current step is analysed on shadow or on live metrics."""
    steps = view.spec.rollout.steps
    index = view.status.step_index or 0
    if index < len(steps) and steps[index].kind is StepKind.SHADOW:
        return SHADOW
    return LIVE


def build_shadow_analysis(analysis: Analysis) -> Analysis:
    """`analysis` as a shadow step applies it: the live-only checks left out."""
    return analysis.model_copy(update=dict.fromkeys(_LIVE_ONLY_FIELDS) | {"checks": []})
