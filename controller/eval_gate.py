"""The built-in eval gate (pure): whether a version's eval set must run, what its result
decides, and what the controller records (docs/rollouts.md, "Eval gate").

:func:`controller.gates.assess_admission` asks :func:`assess_eval_gate` once the webhook
gates let a version start. With no result known, the gate asks for a run (an
:class:`EvalCall` on the plan): the kopf layer runs it (:mod:`controller.eval_runner`) and
decides again with the :class:`EvalOutcome`. The outcome is written to ``status.evalGate``,
so a restarted controller never runs it again for the same start; a retry by hand
(``promptctl rollout retry``) runs it afresh. A failed gate stops the version (Aborted,
Degraded, weight 0) before it ever gets traffic.

    assess_evalset(evalset, prompt)                       -> why it cannot run, or None
    decide_eval_verdict(comparison, min_pass_rate, ...)   -> the reasons it fails ([] passes)
    build_eval_outcome(call, evalset, results, target)    -> (EvalOutcome, Markdown report)
    build_report_configmap(call, report, owner_uid)       -> the report's ConfigMap
    assess_eval_gate(plan, view)                          -> (Gate, why)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from api.v1alpha1 import EvalGate
from controller.conditions import format_time
from controller.gate_calls import EvalCall, EvalOutcome, EvalResults, Gate
from controller.plan import Plan, stable_in
from controller.status import HALTED_PHASES
from controller.versions import Action, VersionView
from prompting.evals.comparison import Comparison, compare
from prompting.evals.evalset import EvalSet
from prompting.evals.gates import Gate as Thresholds
from prompting.evals.gates import Verdict, assess_gate, assess_servability
from prompting.evals.markdown import render_report
from prompting.evals.meta import ReportMeta
from prompting.evals.scoring import CaseResult

__all__ = [
    "UNSUPPORTED_CHECKS",
    "EvalCall",
    "EvalOutcome",
    "EvalResults",
    "assess_eval_gate",
    "assess_evalset",
    "build_eval_outcome",
    "build_report_configmap",
    "decide_eval_verdict",
]

#: Checks that need the embedding model or a judge model: the controller runs neither.
UNSUPPORTED_CHECKS = ("similar_to", "llm_rubric")
#: Longest reason or summary kept in status (the API field's bound).
_MAX_LINE = 1024
#: Longest Markdown report kept (a ConfigMap holds at most 1 MiB).
MAX_REPORT_CHARS = 256 * 1024


def assess_evalset(evalset: EvalSet, prompt: str) -> str | None:
    """Why the controller cannot run `evalset` for `prompt`, or None when it can."""
    if evalset.prompt != prompt:
        return f"the eval set is for prompt {evalset.prompt!r}, not {prompt!r}"
    unsupported = [check for check in UNSUPPORTED_CHECKS if evalset.uses(check)]
    if unsupported:
        return (
            f"the eval set uses {', '.join(unsupported)}, which the controller cannot grade "
            "(they need the embedding model or a judge model): remove them from the gate's "
            "eval set, or run `promptctl eval` in CI or behind a pre-rollout webhook"
        )
    return None


def decide_eval_verdict(
    comparison: Comparison, min_pass_rate: float, problems: Sequence[str] = ()
) -> list[str]:
    """Every reason the candidate fails the gate; empty when it passes.

    `problems` are setup failures (nothing evaluated, a version the service cannot serve):
    they fail the gate on their own. Otherwise a regression against the baseline, a case
    without an answer, no case passed, or a weighted pass rate under `min_pass_rate` fails it.
    """
    if problems:
        return list(problems)
    if not comparison.cases:
        return ["the eval set evaluated nothing"]
    reasons = assess_gate(comparison, Thresholds(min_pass_rate=0.0)).reasons
    rate = comparison.candidate.pass_rate
    if rate < min_pass_rate - 1e-9:
        reasons.append(f"pass rate {rate:.0%} is under minPassRate {min_pass_rate:.0%}")
    return reasons


def _summary(comparison: Comparison, call: EvalCall) -> str:
    new, old = comparison.candidate, comparison.baseline
    line = f"{call.candidate} passes {new.passed}/{new.cases} ({new.pass_rate:.0%})"
    if call.baseline is None:
        return f"{line}; no stable version to compare with"
    line += f", stable {call.baseline} {old.passed}/{old.cases} ({old.pass_rate:.0%})"
    regressions = [c.case_id for c in comparison.regressions]
    if regressions:
        line += f"; {len(regressions)} regression(s): {', '.join(regressions[:10])}"
    return line


def build_eval_outcome(
    call: EvalCall, evalset: EvalSet, results: Mapping[str, Sequence[CaseResult]], target: str
) -> tuple[EvalOutcome, str]:
    """The gate's outcome and Markdown report from each version's results."""
    problems = [p for v, r in results.items() if (p := assess_servability(v, r)) is not None]
    baseline = list(results[call.baseline]) if call.baseline else []
    comparison = compare(baseline, list(results[call.candidate]))
    reasons = decide_eval_verdict(comparison, call.gate.min_pass_rate, problems)
    summary = _summary(comparison, call)
    meta = ReportMeta(
        prompt=call.prompt,
        evalset=f"ConfigMap {call.gate.config_map}, key {call.gate.key}",
        baseline=call.baseline or "(no stable version)",
        candidate=call.candidate,
        target=target,
        evalset_digest=evalset.digest(),
    )
    report = render_report(comparison, meta, Verdict(passed=not reasons, reasons=reasons))
    if len(report) > MAX_REPORT_CHARS:
        report = report[:MAX_REPORT_CHARS] + "\n\n(report cut at 256 KiB)\n"
    outcome = EvalOutcome(
        passed=not reasons,
        reason="; ".join(reasons) if reasons else summary,
        summary=summary,
        digest=evalset.digest(),
        cases=len(comparison.cases),
        pass_rate=round(comparison.candidate.pass_rate, 4),
        baseline_pass_rate=round(comparison.baseline.pass_rate, 4) if call.baseline else None,
        regressions=tuple(c.case_id for c in comparison.regressions),
    )
    return outcome, report


def build_report_configmap(call: EvalCall, report: str, owner_uid: str | None) -> dict[str, Any]:
    """The ConfigMap (key ``report.md``) that keeps `call`'s full report, owned by its version."""
    metadata: dict[str, Any] = {
        "name": f"{call.name[:241]}-eval-report",
        "labels": {
            "promptrollouts.io/prompt": call.prompt,
            "promptrollouts.io/version": call.candidate.replace("+", "_")[:63],
            "app.kubernetes.io/managed-by": "prompt-rollouts-controller",
        },
    }
    if owner_uid:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "promptrollouts.io/v1alpha1",
                "kind": "PromptVersion",
                "name": call.name,
                "uid": owner_uid,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {"report.md": report},
    }


def _rerun(view: VersionView) -> bool:
    """A retry by hand of a halted version runs the gate again (the eval set may be fixed)."""
    request = view.pending_request
    return request is not None and request.action is Action.RETRY and view.phase in HALTED_PHASES


def assess_eval_gate(plan: Plan, view: VersionView) -> tuple[Gate, str]:
    """PASS, WAIT (a run is asked for) or STOP (with why) for `view`'s eval gate."""
    gate = view.spec.rollout.eval_gate
    if gate is None:
        return Gate.PASS, ""
    outcome = plan.eval_results.get(view.name)
    if outcome is None:
        stored = view.status.eval_gate
        if stored is not None and not _rerun(view):
            if stored.result == "Passed":
                return Gate.PASS, ""
            return Gate.STOP, f"stopped by the eval gate: {stored.reason}"
        stable = stable_in(plan, list(plan.views.values()))
        baseline = stable.spec.version if stable is not None and stable is not view else None
        plan.eval_calls.append(
            EvalCall(view.name, view.spec.prompt, view.spec.version, baseline, gate)
        )
        return Gate.WAIT, ""
    _record(plan, view, gate, outcome)
    if outcome.passed:
        return Gate.PASS, ""
    return Gate.STOP, f"stopped by the eval gate: {outcome.reason}"[:_MAX_LINE]


def _record(plan: Plan, view: VersionView, gate: EvalGate, outcome: EvalOutcome) -> None:
    stable = stable_in(plan, list(plan.views.values()))
    entry = {
        "result": "Passed" if outcome.passed else "Failed",
        "reason": outcome.reason[:_MAX_LINE],
        "summary": outcome.summary[:_MAX_LINE],
        "evalSet": f"{gate.config_map}/{gate.key}",
        "digest": outcome.digest,
        "baseline": stable.spec.version if stable is not None and stable is not view else None,
        "passRate": outcome.pass_rate,
        "baselinePassRate": outcome.baseline_pass_rate,
        "cases": outcome.cases,
        "regressions": list(outcome.regressions[:50]),
        "report": outcome.report,
        "time": format_time(plan.now),
    }
    plan.patch(view, eval_gate=entry)
    where = f"; full report: ConfigMap {outcome.report}" if outcome.report else ""
    if outcome.passed:
        plan.event(view, "Normal", "EvalGatePassed", f"{outcome.summary}{where}")
    else:
        plan.event(view, "Warning", "EvalGateFailed", f"{outcome.reason}{where}")
    for note in outcome.notes:
        plan.event(view, *note)
