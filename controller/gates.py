"""Webhook gates and notices (pure): which webhooks to call, and what their answers decide.

The state machine (:mod:`controller.rollout`) asks at two points whether a gate lets a
version through:

- before a version starts (:func:`assess_admission`): ``confirm-rollout`` webhooks, then
  ``pre-rollout`` ones. A confirm-rollout "no" holds the version Pending (asked again every
  analysis interval); a pre-rollout failure stops it (Aborted, Degraded, never any traffic);
- before it goes to 100 % (:func:`assess_promotion`): ``confirm-promotion`` webhooks; a "no"
  holds the last step (asked again at every analysis).

A gate whose answer is not known yet becomes a :class:`GateCall` on the plan: the kopf layer
calls it (:mod:`controller.webhooks`) and decides again with the outcomes, so the decision
never waits on the network. ``post-rollout`` and ``rollback`` webhooks are notices:
:func:`build_notices` lists them after a promotion or a rollback, :func:`build_notice_changes`
records their outcomes; a failure never undoes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from api.v1alpha1 import Phase, Webhook, WebhookType
from controller.conditions import format_time, parse_time
from controller.durations import parse_duration
from controller.eval_gate import assess_eval_gate
from controller.gate_calls import Gate, GateCall, GateOutcome, GateResults, build_payload
from controller.plan import Plan
from controller.status import Change
from controller.versions import VersionView

__all__ = [
    "Gate",
    "GateCall",
    "GateOutcome",
    "GateResults",
    "assess_admission",
    "assess_promotion",
    "build_notice_changes",
    "build_notices",
    "build_payload",
]

ADMISSION_STAGES = ((WebhookType.CONFIRM_ROLLOUT,), (WebhookType.PRE_ROLLOUT,))
PROMOTION_STAGES = ((WebhookType.CONFIRM_PROMOTION,),)
#: Gates whose "no" only holds; the others (pre-rollout) stop the version.
_HOLDING = frozenset({WebhookType.CONFIRM_ROLLOUT, WebhookType.CONFIRM_PROMOTION})


def assess_admission(plan: Plan, view: VersionView) -> Gate:
    """Whether `view` may start its rollout; records outcomes (and stops it on STOP)."""
    gate, why = _assess(plan, view, ADMISSION_STAGES)
    if gate is Gate.PASS:  # the webhooks let it start: then the eval gate (controller.eval_gate)
        gate, why = assess_eval_gate(plan, view)
    if gate is Gate.STOP:
        plan.move(view, Phase.ABORTED, 0, why, warning=True)
    elif gate is Gate.HOLD and why != (plan.planned(view).message or view.status.message):
        plan.patch(view, message=why)
    return gate


def assess_promotion(plan: Plan, view: VersionView) -> Gate:
    """Whether `view` may go to 100 %; records outcomes (a "no" holds it where it is)."""
    gate, why = _assess(plan, view, PROMOTION_STAGES)
    if gate is Gate.HOLD and why != (plan.planned(view).message or view.status.message):
        plan.patch(view, message=why)
    return gate


def _assess(
    plan: Plan, view: VersionView, stages: Sequence[tuple[WebhookType, ...]]
) -> tuple[Gate, str]:
    for types in stages:
        hooks = [h for h in view.spec.rollout.webhooks if h.type in types]
        waiting, held, stopped = False, "", ""
        for hook in hooks:
            outcome = plan.gate_results.get((view.name, hook.name))
            if outcome is None:
                recent = _recent_refusal(plan, view, hook)
                if recent is None:
                    payload = build_payload(view, hook, plan.phase(view))
                    plan.gate_calls.append(GateCall(view.name, hook, payload))
                    waiting = True
                else:
                    held = held or recent
                continue
            _record(plan, view, hook, outcome)
            if not outcome.ok:
                why = f"{hook.type.value} webhook '{hook.name}': {outcome.message}"
                if hook.type in _HOLDING:
                    held = held or f"waiting for {why}"
                else:
                    stopped = stopped or f"stopped by {why}"
        if stopped:
            return Gate.STOP, stopped
        if waiting:
            return Gate.WAIT, ""
        if held:
            return Gate.HOLD, held
    return Gate.PASS, ""


def _recent_refusal(plan: Plan, view: VersionView, hook: Webhook) -> str | None:
    """A confirm-rollout "no" younger than the analysis interval: not asked again yet."""
    if hook.type is not WebhookType.CONFIRM_ROLLOUT:
        return None  # confirm-promotion is asked at each analysis; pre-rollout once per start
    last = next((g for g in view.status.gates if g.name == hook.name), None)
    if last is None or last.result != "Failed" or last.type is not hook.type:
        return None
    when = parse_time(last.time)
    interval = parse_duration(view.spec.rollout.analysis.interval)
    if when is None or (plan.now - when).total_seconds() >= interval:
        return None
    return f"waiting for {hook.type.value} webhook '{hook.name}': {last.message}"


def _record(plan: Plan, view: VersionView, hook: Webhook, outcome: GateOutcome) -> None:
    planned = plan.planned(view)
    current = planned.gates if planned.has("gates") and planned.gates is not None else None
    gates, event = _recorded(view, current, hook, outcome, plan.now)
    plan.patch(view, gates=gates)
    if event is not None:
        plan.event(view, *event)


def _recorded(
    view: VersionView,
    current: list[dict[str, Any]] | None,
    hook: Webhook,
    outcome: GateOutcome,
    now: datetime,
) -> tuple[list[dict[str, Any]], tuple[str, str, str] | None]:
    """Status.gates with `hook`'s outcome in place of its last one, and the Event (on change)."""
    if current is None:
        current = [g.model_dump(mode="json", by_alias=True) for g in view.status.gates]
    result = "Succeeded" if outcome.ok else "Failed"
    entry = {
        "name": hook.name,
        "type": hook.type.value,
        "result": result,
        "message": outcome.message[:1024],
        "time": format_time(now),
    }
    previous = next((g for g in current if g.get("name") == hook.name), None)
    gates = [g for g in current if g.get("name") != hook.name] + [entry]
    gates.sort(key=lambda g: str(g.get("name")))
    what = f"{hook.type.value} webhook '{hook.name}': {outcome.message}"
    event: tuple[str, str, str] | None = None
    notice = hook.type in (WebhookType.POST_ROLLOUT, WebhookType.ROLLBACK)
    if notice or previous is None or previous.get("result") != result:
        if outcome.ok:
            event = ("Normal", "WebhookSucceeded", what)
        elif hook.type in _HOLDING:
            event = ("Normal", "GateHeld", what)
        else:
            event = ("Warning", "WebhookFailed", what)
    return gates, event


def build_notices(views: Sequence[VersionView], changes: Sequence[Change]) -> list[GateCall]:
    """The post-rollout and rollback webhooks that `changes` (already applied) call for."""
    by_name = {v.name: v for v in views}
    calls = []
    for change in changes:
        view, phase = by_name.get(change.name), change.status.phase
        if view is None or phase is None or phase is view.phase:
            continue
        kind = {Phase.PROMOTED: WebhookType.POST_ROLLOUT, Phase.ROLLED_BACK: WebhookType.ROLLBACK}
        wanted = kind.get(phase)
        for hook in view.spec.rollout.webhooks:
            if hook.type is wanted:
                calls.append(GateCall(view.name, hook, build_payload(view, hook, phase)))
    return calls


def build_notice_changes(
    views: Sequence[VersionView],
    changes: Sequence[Change],
    outcomes: Sequence[tuple[GateCall, GateOutcome]],
    now: datetime,
) -> list[Change]:
    """The status.gates patches and Events that record the notices' outcomes."""
    by_name = {v.name: v for v in views}
    applied = {c.name: c for c in changes}
    result: dict[str, Change] = {}
    for call, outcome in outcomes:
        change = result.setdefault(call.name, Change(call.name))
        current = change.status.gates
        if current is None and call.name in applied and applied[call.name].status.has("gates"):
            current = applied[call.name].status.gates
        gates, event = _recorded(by_name[call.name], current, call.hook, outcome, now)
        change.status.update(gates=gates)
        if event is not None:
            change.events.append(event)
    return list(result.values())
