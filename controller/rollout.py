"""The rollout state machine (pure): all versions of one prompt + an analysis verdict → patches.

One call of :func:`decide` looks at every PromptVersion of one logical prompt and returns
the status changes to make, each with the Event that explains it. Time is passed in;
nothing here reads a clock, a cluster or Prometheus. The views and the choice of what to
analyse are in :mod:`controller.versions`; the status patch in :mod:`controller.status`;
the moves between steps (start, advance, promote) in :mod:`controller.steps`.

::

    Pending ──first version──────────────────────────────► Stable (100)
    Pending ──newer than stable──► Progressing (step 0) ──steps done, analysis ok──► Promoted (100)
                                     │  ▲      │                  (old stable ─► Superseded, 0)
                          pause req. │  │ resume│ failureLimit failed / errorLimit errors
                                     ▼  │      ▼
                                    Paused    RolledBack (0) ──retry req.──► Progressing (step 0)
    Progressing/Paused ──abort req.──► Aborted (0) ──retry req.──► Progressing (step 0)
    Progressing/Paused ──a newer version is applied──► Superseded (0)
    any ──spec the CRD could not catch──► Invalid (0)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from api.v1alpha1 import Phase
from controller.analysis import Assessment, Verdict
from controller.conditions import format_time, read_conditions
from controller.gate_calls import EvalCall, EvalResults
from controller.gates import Gate, GateCall, GateResults, assess_admission, assess_promotion
from controller.plan import (
    Plan,
    balance_weights,
    canary_in,
    pause_over,
    record_assessment,
    stable_in,
)
from controller.status import (
    CANARY_PHASES,
    HALTED_PHASES,
    STABLE_PHASES,
    Change,
    StatusPatch,
    decide_invalid,
)
from controller.steps import advance_step, promote, start_rollout
from controller.versions import (
    REQUEST_ANNOTATION,
    Action,
    AnalysisTarget,
    ManualRequest,
    UnreadableVersion,
    VersionView,
    analysis_due,
    canary_of,
    decide_analysis,
    parse_request,
    stable_of,
)

# Names from controller.versions and .status are re-exported: callers import them here.
__all__ = [
    "REQUEST_ANNOTATION",
    "STABLE_PHASES",
    "Action",
    "AnalysisTarget",
    "Change",
    "ManualRequest",
    "StatusPatch",
    "UnreadableVersion",
    "VersionView",
    "analysis_due",
    "canary_of",
    "decide",
    "decide_analysis",
    "decide_with_evals",
    "decide_with_gates",
    "format_time",
    "parse_request",
    "stable_of",
]


def decide(
    views: Sequence[VersionView],
    assessment: Assessment | None,
    now: datetime,
    unreadable: Sequence[UnreadableVersion] = (),
    gates: GateResults | None = None,
) -> list[Change]:
    """Every status change one prompt's versions need now (see :func:`decide_with_gates`)."""
    return decide_with_gates(views, assessment, now, unreadable, gates)[0]


def decide_with_gates(
    views: Sequence[VersionView],
    assessment: Assessment | None,
    now: datetime,
    unreadable: Sequence[UnreadableVersion] = (),
    gates: GateResults | None = None,
) -> tuple[list[Change], list[GateCall]]:
    """The changes and the webhooks to call first (see :func:`decide_with_evals`)."""
    return decide_with_evals(views, assessment, now, unreadable, gates)[:2]


def decide_with_evals(
    views: Sequence[VersionView],
    assessment: Assessment | None,
    now: datetime,
    unreadable: Sequence[UnreadableVersion] = (),
    gates: GateResults | None = None,
    evals: EvalResults | None = None,
) -> tuple[list[Change], list[GateCall], list[EvalCall]]:
    """Every status change one prompt's versions need now, and the webhooks and eval runs
    to make first: make them and decide again with their outcomes added to `gates`/`evals`.

    `assessment` is the canary's analysis when one was due and ran (:func:`decide_analysis`).
    """
    plan = Plan(views, now, gates, evals)
    for version in unreadable:  # marked Invalid; they take no part in the rollout
        message = f"invalid spec: {version.reason}"
        if change := decide_invalid(version.name, version.phase, version.conditions, message, now):
            plan.changes[version.name] = change
    valid = _mark_invalid(plan, views)
    _handle_requests(plan, valid)
    _admit_new_versions(plan, valid)
    _progresscanary_in(plan, valid, assessment)
    balance_weights(plan, valid)
    changes = [c for c in plan.changes.values() if c.status.model_fields_set or c.events]
    return changes, plan.gate_calls, plan.eval_calls


def _mark_invalid(plan: Plan, views: Sequence[VersionView]) -> list[VersionView]:
    valid = []
    for view in views:
        if view.invalid_reason is not None:
            conditions = read_conditions(view.status.conditions)
            change = decide_invalid(
                view.name, view.phase, conditions, view.invalid_reason, plan.now
            )
            if change is not None:
                plan.changes[view.name] = change
        if view.invalid_reason is None and view.phase is not Phase.INVALID:
            valid.append(view)
    return valid


def _handle_requests(plan: Plan, views: Sequence[VersionView]) -> None:
    for view in views:
        request = view.pending_request
        if request is None:
            continue
        plan.patch(view, handled_request=request.raw)
        phase = plan.phase(view)
        action = request.action
        if phase in CANARY_PHASES and action in (Action.PROMOTE, Action.PROMOTE_FULL):
            if action is Action.PROMOTE_FULL:
                promote(plan, views, view, "promoted by hand (full)")
            else:
                advance_step(plan, views, view, "advanced by hand")
        elif phase in CANARY_PHASES and action is Action.ABORT:
            plan.move(view, Phase.ABORTED, 0, "aborted by hand", warning=True)
        elif phase is Phase.PROGRESSING and action is Action.PAUSE:
            plan.move(view, Phase.PAUSED, _weight(view), "paused by hand")
        elif phase is Phase.PAUSED and action is Action.RESUME:
            plan.move(view, Phase.PROGRESSING, _weight(view), "resumed by hand")
            plan.patch(view, step_started_at=plan.now)
        elif phase in HALTED_PHASES and action is Action.RETRY:
            _retry(plan, views, view)
        else:
            plan.event(view, "Warning", "RequestIgnored", f"{action.value} does nothing in {phase}")


def _weight(view: VersionView) -> int:
    return view.status.weight or 0


def _retry(plan: Plan, views: Sequence[VersionView], view: VersionView) -> None:
    stable = stable_in(plan, views)
    if stable is not None and view.semver <= stable.semver:
        plan.event(view, "Warning", "RequestIgnored", f"retry: {stable.spec.version} is newer")
        return
    current = canary_in(plan, views)
    if current is not None and current.name != view.name and current.semver > view.semver:
        plan.event(view, "Warning", "RequestIgnored", f"retry: {current.spec.version} rolls out")
        return
    if assess_admission(plan, view) is not Gate.PASS:
        return
    if current is not None and current.name != view.name:
        plan.move(current, Phase.SUPERSEDED, 0, f"superseded by {view.spec.version}")
    start_rollout(plan, view, "retried by hand")


def _admit_new_versions(plan: Plan, views: Sequence[VersionView]) -> None:
    pending = sorted(
        (v for v in views if plan.phase(v) is Phase.PENDING), key=lambda v: v.semver, reverse=True
    )
    if not pending:
        return
    newest, older = pending[0], pending[1:]
    stable, canary = stable_in(plan, views), canary_in(plan, views)
    serving = [v for v in (canary, stable) if v is not None]
    if not serving:
        plan.move(newest, Phase.STABLE, 100, "first version of the prompt")
    elif newest.semver > max(v.semver for v in serving):
        steps = newest.spec.rollout.steps
        if assess_admission(plan, newest) is Gate.PASS and (
            steps or assess_promotion(plan, newest) is Gate.PASS
        ):
            if canary is not None:
                plan.move(canary, Phase.SUPERSEDED, 0, f"superseded by {newest.spec.version}")
            if steps:
                base = stable.spec.version if stable is not None else "nothing"
                start_rollout(plan, newest, f"rolling out over {base}")
            else:
                promote(plan, views, newest, "no rollout steps: promoted at once")
    else:
        older = pending
    for view in older:
        plan.move(view, Phase.SUPERSEDED, 0, "older than the version being served")


def _progresscanary_in(
    plan: Plan, views: Sequence[VersionView], assessment: Assessment | None
) -> None:
    canary = canary_in(plan, views)
    if canary is None:
        return
    if stable_in(plan, views) is None:  # paused or not: it alone serves, so it takes 100
        promote(plan, views, canary, "no stable version left: promoted")
        return
    if plan.phase(canary) is not Phase.PROGRESSING:
        return
    started_now = plan.planned(canary).has("step_index")
    if assessment is None or started_now:
        return  # no analysis ran, or the canary (re)started its step in this decision
    analysis = canary.spec.rollout.analysis
    record_assessment(plan, canary, assessment)
    failures, errors = canary.status.consecutive_failures, canary.status.consecutive_errors
    reasons = "; ".join(assessment.reasons)
    if assessment.verdict is Verdict.FAILED:
        failures += 1
        plan.patch(canary, consecutive_failures=failures, consecutive_errors=0)
        plan.event(
            canary, "Warning", "AnalysisFailed", f"{failures}/{analysis.failure_limit}: {reasons}"
        )
        if failures >= analysis.failure_limit:
            plan.move(canary, Phase.ROLLED_BACK, 0, f"rolled back: {reasons}", warning=True)
    elif assessment.verdict is Verdict.ERROR:
        errors += 1
        plan.patch(canary, consecutive_errors=errors)
        plan.event(
            canary, "Warning", "AnalysisError", f"{errors}/{analysis.error_limit}: {reasons}"
        )
        if errors >= analysis.error_limit:
            plan.move(canary, Phase.ROLLED_BACK, 0, f"rolled back: {reasons}", warning=True)
    elif assessment.verdict is Verdict.INCONCLUSIVE:
        plan.patch(canary, consecutive_errors=0)
    else:
        plan.patch(canary, consecutive_failures=0, consecutive_errors=0)
        if pause_over(canary, plan.now):
            advance_step(plan, views, canary, "analysis passed", gated=True)
