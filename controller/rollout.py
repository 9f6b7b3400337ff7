"""The rollout state machine (pure): all versions of one prompt + an analysis verdict → patches.

One call of :func:`decide` looks at every PromptVersion of one logical prompt and
returns the status changes to make, each with the Event that explains it. Time is
passed in; nothing here reads a clock, a cluster or Prometheus.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import semver

from api.v1alpha1 import Phase, PromptVersionSpec, PromptVersionStatus
from controller.analysis import Assessment, Verdict
from controller.conditions import set_condition
from controller.durations import parse_duration

__all__ = [
    "REQUEST_ANNOTATION",
    "STABLE_PHASES",
    "Action",
    "Change",
    "ManualRequest",
    "VersionView",
    "analysis_due",
    "canary_of",
    "decide",
    "format_time",
    "parse_request",
]

#: The annotation `promptctl promote|abort|pause|resume|retry` writes: "<action>@<unique id>".
REQUEST_ANNOTATION = "promptrollouts.io/request"
STABLE_PHASES = frozenset({Phase.STABLE, Phase.PROMOTED})
CANARY_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED})
HALTED_PHASES = frozenset({Phase.ROLLED_BACK, Phase.ABORTED})


class Action(StrEnum):
    """What a human can ask of a rollout."""

    PROMOTE = "promote"
    PROMOTE_FULL = "promote-full"
    ABORT = "abort"
    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"


@dataclass(frozen=True)
class ManualRequest:
    """A parsed request annotation; `raw` identifies it so it is acted on once."""

    action: Action
    raw: str


def parse_request(value: str | None) -> ManualRequest | None:
    """`"promote@2026-11-25T12:00:00Z"` → ManualRequest; None for absent or unknown actions."""
    if not value:
        return None
    action = value.split("@", 1)[0].strip()
    try:
        return ManualRequest(Action(action), value)
    except ValueError:
        return None


@dataclass(frozen=True)
class VersionView:
    """One PromptVersion as the controller sees it."""

    name: str
    spec: PromptVersionSpec
    status: PromptVersionStatus
    #: Why the service could not serve it (template, variables, collection), if anything.
    invalid_reason: str | None = None
    request: ManualRequest | None = None

    @property
    def semver(self) -> semver.Version:
        """The parsed version."""
        return semver.Version.parse(self.spec.version)

    @property
    def phase(self) -> Phase:
        """The phase, Pending when none was written yet."""
        return self.status.phase or Phase.PENDING

    @property
    def pending_request(self) -> ManualRequest | None:
        """The request annotation, unless it was already handled."""
        if self.request is None or self.request.raw == self.status.handled_request:
            return None
        return self.request


@dataclass
class Change:
    """A status merge patch for one object, and the Events that explain it."""

    name: str
    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with a Z, as Kubernetes writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def canary_of(views: Sequence[VersionView]) -> VersionView | None:
    """The version currently being rolled out, if any (the newest, should there be two)."""
    canaries = [v for v in views if v.phase in CANARY_PHASES]
    return max(canaries, key=lambda v: v.semver, default=None)


def analysis_due(view: VersionView, now: datetime) -> bool:
    """Whether the canary's next analysis is due (its interval since the last one)."""
    if view.phase is not Phase.PROGRESSING:
        return False
    last = _parse_time((view.status.last_analysis or {}).get("time"))
    started = _parse_time(view.status.step_started_at)
    reference = max((t for t in (last, started) if t is not None), default=None)
    if reference is None:
        return True
    interval = parse_duration(view.spec.rollout.analysis.interval)
    return (now - reference).total_seconds() >= interval


class _Plan:
    """Accumulates changes for one decision, keyed by object name."""

    def __init__(self, views: Sequence[VersionView], now: datetime) -> None:
        self.views = {v.name: v for v in views}
        self.now = format_time(now)
        self.changes: dict[str, Change] = {}

    def patch(self, view: VersionView, **status: Any) -> Change:
        change = self.changes.setdefault(view.name, Change(view.name))
        change.status.update(status)
        return change

    def event(self, view: VersionView, kind: str, reason: str, message: str) -> None:
        self.patch(view).events.append((kind, reason, message))

    def phase(self, view: VersionView) -> Phase:
        value = self.changes.get(view.name, Change(view.name)).status.get("phase")
        return Phase(value) if value else view.phase

    def move(
        self, view: VersionView, phase: Phase, weight: int, message: str, *, warning: bool = False
    ) -> None:
        """Put `view` in `phase` at `weight`, with conditions and an Event."""
        conditions = [
            c.model_dump(by_alias=True, exclude_none=True) for c in view.status.conditions
        ]
        current = self.changes.get(view.name)
        if current is not None and "conditions" in current.status:
            conditions = current.status["conditions"]
        for kind, value in (
            ("Promoted", phase in STABLE_PHASES),
            ("Progressing", phase in CANARY_PHASES),
            ("Degraded", phase in HALTED_PHASES or phase is Phase.INVALID),
        ):
            conditions = set_condition(conditions, kind, value, phase.value, message, self.now)
        self.patch(view, phase=phase.value, weight=weight, message=message, conditions=conditions)
        if phase is not view.phase:
            self.event(view, "Warning" if warning else "Normal", phase.value, message)


def decide(
    views: Sequence[VersionView], assessment: Assessment | None, now: datetime
) -> list[Change]:
    """Every status change one prompt's versions need now.

    `assessment` is the result of the canary's analysis when one was due and ran,
    else None.
    """
    plan = _Plan(views, now)
    valid = _mark_invalid(plan, views)
    _handle_requests(plan, valid)
    _admit_new_versions(plan, valid)
    _progress_canary(plan, valid, assessment)
    _balance_weights(plan, valid)
    return [change for change in plan.changes.values() if change.status or change.events]


def _mark_invalid(plan: _Plan, views: Sequence[VersionView]) -> list[VersionView]:
    valid = []
    for view in views:
        if view.phase is Phase.INVALID:
            continue
        if view.invalid_reason is not None:
            plan.move(view, Phase.INVALID, 0, view.invalid_reason, warning=True)
            continue
        valid.append(view)
    return valid


def _stable(plan: _Plan, views: Sequence[VersionView]) -> VersionView | None:
    stables = [v for v in views if plan.phase(v) in STABLE_PHASES]
    return max(stables, key=lambda v: v.semver, default=None)


def _canary(plan: _Plan, views: Sequence[VersionView]) -> VersionView | None:
    canaries = [v for v in views if plan.phase(v) in CANARY_PHASES]
    return max(canaries, key=lambda v: v.semver, default=None)


def _handle_requests(plan: _Plan, views: Sequence[VersionView]) -> None:
    for view in views:
        request = view.pending_request
        if request is None:
            continue
        plan.patch(view, handledRequest=request.raw)
        phase = plan.phase(view)
        action = request.action
        if phase in CANARY_PHASES and action in (Action.PROMOTE, Action.PROMOTE_FULL):
            if action is Action.PROMOTE_FULL:
                _promote(plan, views, view, "promoted by hand (full)")
            else:
                _advance(plan, views, view, "advanced by hand")
        elif phase in CANARY_PHASES and action is Action.ABORT:
            plan.move(view, Phase.ABORTED, 0, "aborted by hand", warning=True)
        elif phase is Phase.PROGRESSING and action is Action.PAUSE:
            plan.move(view, Phase.PAUSED, _weight(view), "paused by hand")
        elif phase is Phase.PAUSED and action is Action.RESUME:
            plan.move(view, Phase.PROGRESSING, _weight(view), "resumed by hand")
            plan.patch(view, stepStartedAt=plan.now)
        elif phase in HALTED_PHASES and action is Action.RETRY:
            _retry(plan, views, view)
        else:
            plan.event(view, "Warning", "RequestIgnored", f"{action.value} does nothing in {phase}")


def _weight(view: VersionView) -> int:
    return view.status.weight or 0


def _retry(plan: _Plan, views: Sequence[VersionView], view: VersionView) -> None:
    stable = _stable(plan, views)
    if stable is not None and view.semver <= stable.semver:
        plan.event(view, "Warning", "RequestIgnored", f"retry: {stable.spec.version} is newer")
        return
    current = _canary(plan, views)
    if current is not None and current.name != view.name:
        if current.semver > view.semver:
            plan.event(
                view, "Warning", "RequestIgnored", f"retry: {current.spec.version} rolls out"
            )
            return
        plan.move(current, Phase.SUPERSEDED, 0, f"superseded by {view.spec.version}")
    _start(plan, view, "retried by hand")


def _start(plan: _Plan, view: VersionView, why: str) -> None:
    """Begin (or restart) `view`'s rollout at its first step."""
    steps = view.spec.rollout.steps
    plan.move(view, Phase.PROGRESSING, steps[0].weight if steps else 0, f"{why}: step 1")
    plan.patch(
        view, stepIndex=0, stepStartedAt=plan.now, consecutiveFailures=0, consecutiveErrors=0
    )


def _admit_new_versions(plan: _Plan, views: Sequence[VersionView]) -> None:
    pending = sorted(
        (v for v in views if plan.phase(v) is Phase.PENDING), key=lambda v: v.semver, reverse=True
    )
    if not pending:
        return
    newest, older = pending[0], pending[1:]
    stable, canary = _stable(plan, views), _canary(plan, views)
    serving = [v for v in (canary, stable) if v is not None]
    if not serving:
        plan.move(newest, Phase.STABLE, 100, "first version of the prompt")
    elif newest.semver > max(v.semver for v in serving):
        if canary is not None:
            plan.move(canary, Phase.SUPERSEDED, 0, f"superseded by {newest.spec.version}")
        if newest.spec.rollout.steps:
            base = stable.spec.version if stable is not None else "nothing"
            _start(plan, newest, f"rolling out over {base}")
        else:
            _promote(plan, views, newest, "no rollout steps: promoted at once")
    else:
        older = pending
    for view in older:
        plan.move(view, Phase.SUPERSEDED, 0, "older than the version being served")


def _progress_canary(
    plan: _Plan, views: Sequence[VersionView], assessment: Assessment | None
) -> None:
    canary = _canary(plan, views)
    if canary is None:
        return
    if _stable(plan, views) is None:  # paused or not: it alone serves, so it takes 100
        _promote(plan, views, canary, "no stable version left: promoted")
        return
    if plan.phase(canary) is not Phase.PROGRESSING:
        return
    started_now = "stepIndex" in plan.changes.get(canary.name, Change(canary.name)).status
    if assessment is None or started_now:
        return  # no analysis ran, or the canary (re)started its step in this decision
    analysis = canary.spec.rollout.analysis
    last = assessment.to_status(plan.now)
    plan.patch(canary, lastAnalysis=_replacing(canary.status.last_analysis, last))
    failures, errors = canary.status.consecutive_failures, canary.status.consecutive_errors
    reasons = "; ".join(assessment.reasons)
    if assessment.verdict is Verdict.FAILED:
        failures += 1
        plan.patch(canary, consecutiveFailures=failures, consecutiveErrors=0)
        plan.event(
            canary, "Warning", "AnalysisFailed", f"{failures}/{analysis.failure_limit}: {reasons}"
        )
        if failures >= analysis.failure_limit:
            plan.move(canary, Phase.ROLLED_BACK, 0, f"rolled back: {reasons}", warning=True)
    elif assessment.verdict is Verdict.ERROR:
        errors += 1
        plan.patch(canary, consecutiveErrors=errors)
        plan.event(
            canary, "Warning", "AnalysisError", f"{errors}/{analysis.error_limit}: {reasons}"
        )
        if errors >= analysis.error_limit:
            plan.move(canary, Phase.ROLLED_BACK, 0, f"rolled back: {reasons}", warning=True)
    elif assessment.verdict is Verdict.INCONCLUSIVE:
        plan.patch(canary, consecutiveErrors=0)
    else:
        plan.patch(canary, consecutiveFailures=0, consecutiveErrors=0)
        if _pause_over(canary, plan):
            _advance(plan, views, canary, "analysis passed")


def _replacing(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """`new` as a merge patch that replaces `old`: keys only `old` has become None (deleted)."""
    patch = dict(new)
    for key, value in (old or {}).items():
        if key not in patch:
            patch[key] = None
        elif isinstance(value, Mapping) and isinstance(patch[key], Mapping):
            patch[key] = _replacing(value, patch[key])
    return patch


def _pause_over(view: VersionView, plan: _Plan) -> bool:
    steps = view.spec.rollout.steps
    index = view.status.step_index or 0
    if index >= len(steps):
        return True
    pause = steps[index].pause
    if pause is None:
        return True
    if pause == "manual":
        return False
    started = _parse_time(view.status.step_started_at)
    now = _parse_time(plan.now)
    assert now is not None
    return started is None or (now - started).total_seconds() >= parse_duration(pause)


def _advance(plan: _Plan, views: Sequence[VersionView], view: VersionView, why: str) -> None:
    steps = view.spec.rollout.steps
    index = (view.status.step_index or 0) + 1
    if index >= len(steps):
        _promote(plan, views, view, f"{why}: all {len(steps)} steps done")
        return
    plan.move(view, Phase.PROGRESSING, steps[index].weight, f"{why}: step {index + 1}")
    plan.patch(view, stepIndex=index, stepStartedAt=plan.now)
    plan.event(view, "Normal", "StepAdvanced", f"step {index + 1}: {steps[index].weight}%")


def _promote(plan: _Plan, views: Sequence[VersionView], view: VersionView, why: str) -> None:
    for other in views:
        if other.name != view.name and plan.phase(other) in STABLE_PHASES:
            plan.move(other, Phase.SUPERSEDED, 0, f"superseded by {view.spec.version}")
    plan.move(view, Phase.PROMOTED, 100, why)
    plan.patch(view, stepIndex=len(view.spec.rollout.steps))


def _balance_weights(plan: _Plan, views: Sequence[VersionView]) -> None:
    """The stable version takes whatever the canary does not."""
    stable = _stable(plan, views)
    if stable is None:
        return
    canary = _canary(plan, views)
    canary_weight = 0
    if canary is not None:
        change = plan.changes.get(canary.name, Change(canary.name))
        canary_weight = int(change.status.get("weight", _weight(canary)))
    wanted = 100 - canary_weight
    current = plan.changes.get(stable.name)
    current_weight = current.status.get("weight") if current else stable.status.weight
    if current_weight != wanted:
        plan.patch(stable, weight=wanted)
