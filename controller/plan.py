"""One decision's plan (pure): the status patches and Events :func:`controller.rollout.decide`
accumulates, and the small questions it asks of a version on the way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from api.v1alpha1 import Phase
from controller.analysis import Assessment, Verdict
from controller.conditions import parse_time, read_conditions
from controller.durations import parse_duration
from controller.gate_calls import EvalCall, EvalResults, GateCall, GateResults
from controller.shadow import SHADOW, decide_step_status
from controller.status import (
    CANARY_PHASES,
    STABLE_PHASES,
    Change,
    StatusPatch,
    build_phase_conditions,
)
from controller.versions import VersionView

__all__ = [
    "Plan",
    "balance_weights",
    "build_replacing_patch",
    "canary_in",
    "pause_over",
    "record_assessment",
    "stable_in",
]


class Plan:
    """Accumulates changes for one decision, keyed by object name."""

    def __init__(
        self,
        views: Sequence[VersionView],
        now: datetime,
        gate_results: GateResults | None = None,
        eval_results: EvalResults | None = None,
    ) -> None:
        self.views = {v.name: v for v in views}
        self.now = now
        self.changes: dict[str, Change] = {}
        #: Webhook outcomes known this tick, and the webhooks still to call (controller.gates).
        self.gate_results: GateResults = gate_results or {}
        self.gate_calls: list[GateCall] = []
        #: Eval gate outcomes known this tick, and the eval runs still to make (eval_gate).
        self.eval_results: EvalResults = eval_results or {}
        self.eval_calls: list[EvalCall] = []

    def patch(self, view: VersionView, **status: Any) -> Change:
        """Set status fields (snake_case) of `view`'s one patch."""
        change = self.changes.setdefault(view.name, Change(view.name))
        change.status.update(**status)
        return change

    def event(self, view: VersionView, kind: str, reason: str, message: str) -> None:
        self.patch(view).events.append((kind, reason, message))

    def planned(self, view: VersionView) -> StatusPatch:
        """What this decision has set on `view` so far (empty when nothing)."""
        change = self.changes.get(view.name)
        return change.status if change is not None else StatusPatch()

    def phase(self, view: VersionView) -> Phase:
        return self.planned(view).phase or view.phase

    def move(
        self, view: VersionView, phase: Phase, weight: int, message: str, *, warning: bool = False
    ) -> None:
        """Put `view` in `phase` at `weight`, with conditions and an Event."""
        planned = self.planned(view)
        if planned.has("conditions") and planned.conditions is not None:
            conditions = planned.conditions
        else:
            conditions = read_conditions(view.status.conditions)
        conditions = build_phase_conditions(conditions, phase, message, self.now)
        self.patch(view, phase=phase, weight=weight, message=message, conditions=conditions)
        if phase not in CANARY_PHASES and (
            view.status.shadow_percent or self.planned(view).shadow_percent
        ):
            self.patch(view, **decide_step_status(None))  # shadow traffic stops now
        if phase is not view.phase:
            self.event(view, "Warning" if warning else "Normal", phase.value, message)


def build_replacing_patch(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """`new` as a merge patch that replaces `old`: keys only `old` has become None (deleted)."""
    patch = dict(new)
    for key, value in (old or {}).items():
        if key not in patch:
            patch[key] = None
        elif isinstance(value, Mapping) and isinstance(patch[key], Mapping):
            patch[key] = build_replacing_patch(value, patch[key])
    return patch


def pause_over(view: VersionView, now: datetime) -> bool:
    """Whether the pause of `view`'s current step is over at `now` (a manual one never is)."""
    steps = view.spec.rollout.steps
    index = view.status.step_index or 0
    if index >= len(steps):
        return True
    step = steps[index]
    pause = step.shadow.duration if step.shadow is not None else step.pause
    if pause is None:
        return True
    if pause == "manual":
        return False
    started = parse_time(view.status.step_started_at)
    return started is None or (now - started).total_seconds() >= parse_duration(pause)


def stable_in(plan: Plan, views: Sequence[VersionView]) -> VersionView | None:
    """The newest version in a stable phase, as planned so far."""
    stables = [v for v in views if plan.phase(v) in STABLE_PHASES]
    return max(stables, key=lambda v: v.semver, default=None)


def canary_in(plan: Plan, views: Sequence[VersionView]) -> VersionView | None:
    """The newest version in a canary phase, as planned so far."""
    canaries = [v for v in views if plan.phase(v) in CANARY_PHASES]
    return max(canaries, key=lambda v: v.semver, default=None)


def balance_weights(plan: Plan, views: Sequence[VersionView]) -> None:
    """The stable version takes whatever the canary does not."""
    stable = stable_in(plan, views)
    if stable is None:
        return
    canary = canary_in(plan, views)
    canary_weight = 0
    if canary is not None:
        planned = plan.planned(canary)
        weight = planned.weight if planned.has("weight") else canary.status.weight
        canary_weight = weight or 0
    wanted = 100 - canary_weight
    planned = plan.planned(stable)
    current_weight = planned.weight if planned.has("weight") else stable.status.weight
    if current_weight != wanted:
        plan.patch(stable, weight=wanted)


def record_assessment(plan: Plan, canary: VersionView, assessment: Assessment) -> None:
    """status.lastAnalysis, the quality line, and the shadow answers a shadow step counted."""
    last = assessment.to_status(plan.now)
    plan.patch(canary, last_analysis=build_replacing_patch(canary.status.last_analysis, last))
    quality = assessment.quality_summary
    if assessment.verdict is not Verdict.ERROR and quality != canary.status.quality:
        plan.patch(canary, quality=quality)
    measured = assessment.measurement
    if measured.mode == SHADOW and measured.canary is not None:
        requests = measured.canary.requests
        plan.patch(canary, shadow_samples=round(requests) if requests is not None else 0)
