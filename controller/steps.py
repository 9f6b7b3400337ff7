"""A canary's moves between rollout steps (pure): start at step 1, advance, promote.

:func:`controller.rollout.decide` calls these when a version is admitted, retried, passes
its analysis at the end of a step's pause, or is advanced or promoted by hand. Each one
records its phase, weight, step fields and Event in the decision's :class:`Plan`.
"""

from __future__ import annotations

from collections.abc import Sequence

from api.v1alpha1 import Phase
from controller.gates import Gate, assess_promotion
from controller.plan import Plan
from controller.shadow import decide_step_status
from controller.status import STABLE_PHASES
from controller.versions import VersionView

__all__ = ["advance_step", "promote", "start_rollout"]


def start_rollout(plan: Plan, view: VersionView, why: str) -> None:
    """Begin (or restart) `view`'s rollout at its first step."""
    steps = view.spec.rollout.steps
    plan.move(view, Phase.PROGRESSING, steps[0].live_weight if steps else 0, f"{why}: step 1")
    plan.patch(
        view, step_index=0, step_started_at=plan.now, consecutive_failures=0, consecutive_errors=0
    )
    if steps:
        plan.patch(view, **decide_step_status(steps[0]), shadow_samples=None)
    if view.status.quality is not None:  # a retry: the last attempt's verdict no longer applies
        plan.patch(view, quality=None)


def advance_step(
    plan: Plan, views: Sequence[VersionView], view: VersionView, why: str, gated: bool = False
) -> None:
    """The next step, or promotion after the last (once confirm-promotion says yes, if `gated`)."""
    steps = view.spec.rollout.steps
    index = (view.status.step_index or 0) + 1
    if index >= len(steps):
        if not gated or assess_promotion(plan, view) is Gate.PASS:
            promote(plan, views, view, f"{why}: all {len(steps)} steps done")
        return
    step = steps[index]
    plan.move(view, Phase.PROGRESSING, step.live_weight, f"{why}: step {index + 1}")
    plan.patch(view, step_index=index, step_started_at=plan.now, **decide_step_status(step))
    shown = f"shadow {step.shadow.percent}%" if step.shadow is not None else f"{step.weight}%"
    plan.event(view, "Normal", "StepAdvanced", f"step {index + 1}: {shown}")


def promote(plan: Plan, views: Sequence[VersionView], view: VersionView, why: str) -> None:
    """Make `view` the one stable version at 100, past its last step; others are Superseded."""
    for other in views:
        if other.name != view.name and plan.phase(other) in STABLE_PHASES:
            plan.move(other, Phase.SUPERSEDED, 0, f"superseded by {view.spec.version}")
    plan.move(view, Phase.PROMOTED, 100, why)
    plan.patch(view, step_index=len(view.spec.rollout.steps), step_kind=None)
