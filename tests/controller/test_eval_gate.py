"""The eval gate as decisions (pure): the verdict table, what the controller cannot grade,
and the rollout decisions around a run (asked for, passed, failed, stored, retried)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.v1alpha1 import EvalGate, EvalGateResult, Phase, PromptVersionSpec, PromptVersionStatus
from controller.eval_gate import (
    EvalCall,
    EvalOutcome,
    assess_evalset,
    build_eval_outcome,
    build_report_configmap,
    decide_eval_verdict,
)
from controller.eval_runner import _shown
from controller.rollout import Change, VersionView, decide_with_evals, parse_request
from prompting.evals.comparison import compare
from prompting.evals.evalset import EvalSet, parse_evalset
from prompting.evals.scoring import CaseResult, RunResult
from tests.promptctl.evals.builders import result

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SPEC_FILE = Path(__file__).resolve().parents[2] / "prompts" / "policy-qa-1.1.0.yaml"
BASE = PromptVersionSpec.model_validate(yaml.safe_load(SPEC_FILE.read_text())["spec"])
GATE = EvalGate(config_map="policy-qa-evals", min_pass_rate=0.5)
NEW = "policy-qa-1-1-0"
UNDER = "pass rate 50% is under minPassRate 80%"


def errored(case_id: str) -> CaseResult:
    run = RunResult(passed=False, outcome="HTTP no response", error="ConnectError: refused")
    return CaseResult(case_id=case_id, question="q", runs=[run])


# --- the verdict ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "candidate", "minimum", "problems", "expected"),
    [
        ([("a", True), ("b", True)], [("a", True), ("b", True)], 1.0, [], []),
        ([("a", True), ("b", False)], [("a", True), ("b", False)], 0.5, [], []),
        ([("a", True), ("b", True)], [("a", True), ("b", False)], 0.5, [], ["1 regression(s) (b)"]),
        (
            [("a", False), ("b", False)],
            [("a", True), ("b", False)],
            0.8,
            [],
            ["pass rate 50% is under minPassRate 80%"],
        ),
        ([("a", False)], [("a", False)], 0.0, [], ["the candidate passes no case"]),
        ([], [("a", True), ("b", True)], 1.0, [], []),
        ([], [("a", True)], 1.0, ["nothing could be evaluated"], ["nothing could be evaluated"]),
    ],
    ids=[
        "all-pass",
        "same-fails-over-minimum",
        "regression",
        "under-minimum",
        "nothing-passes",
        "no-stable",
        "setup-problem",
    ],
)
def test_the_verdict(
    baseline: list[tuple[str, bool]],
    candidate: list[tuple[str, bool]],
    minimum: float,
    problems: list[str],
    expected: list[str],
) -> None:
    comparison = compare([result(i, p) for i, p in baseline], [result(i, p) for i, p in candidate])
    reasons = decide_eval_verdict(comparison, minimum, problems)
    assert len(reasons) == len(expected)
    for reason, start in zip(reasons, expected, strict=True):
        assert reason.startswith(start), reason


def test_a_case_without_an_answer_fails_even_when_the_rate_is_met() -> None:
    comparison = compare([], [result("a", True), result("b", True), errored("c")])
    (reason,) = decide_eval_verdict(comparison, 0.5)
    assert reason.startswith("1 case(s) got no answer from the candidate (c; first: ConnectError")


def test_an_empty_comparison_never_passes() -> None:
    assert decide_eval_verdict(compare([], []), 0.0) == ["the eval set evaluated nothing"]


# --- what the controller can grade ----------------------------------------------------


def evalset(prompt: str = "policy-qa", **expect: Any) -> EvalSet:
    checks = expect or {"contains_any": ["14 days"]}
    text = yaml.safe_dump(
        {"prompt": prompt, "cases": [{"id": "refund", "question": "Refund?", "expect": checks}]}
    )
    return parse_evalset(text)


NEGATED_RUBRIC: dict[str, Any] = {"not": {"llm_rubric": {"rubric": "rude"}}}


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (evalset(), None),
        (evalset(outcome="answered", regex="\\d+ days"), None),
        (evalset("other-prompt"), "the eval set is for prompt 'other-prompt', not 'policy-qa'"),
        (evalset(similar_to={"text": "14 days"}), "the eval set uses similar_to, which"),
        (evalset("policy-qa", **NEGATED_RUBRIC), "the eval set uses llm_rubric"),
    ],
    ids=["contains", "outcome-regex", "other-prompt", "similar-to", "negated-rubric"],
)
def test_what_the_controller_can_grade(built: EvalSet, expected: str | None) -> None:
    problem = assess_evalset(built, "policy-qa")
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(expected)
        if "uses" in expected:
            assert "promptctl eval" in problem


def test_the_outcome_and_report_of_a_run() -> None:
    call = EvalCall(NEW, "policy-qa", "1.1.0", "1.0.0", GATE)
    results = {
        "1.0.0": [result("a", True), result("b", True)],
        "1.1.0": [result("a", True), result("b", False)],
    }
    outcome, report = build_eval_outcome(call, evalset(), results, "http://svc:8000")
    assert not outcome.passed
    assert outcome.reason == "1 regression(s) (b)"
    assert outcome.summary == "1.1.0 passes 1/2 (50%), stable 1.0.0 2/2 (100%); 1 regression(s): b"
    assert (outcome.pass_rate, outcome.baseline_pass_rate, outcome.regressions) == (
        0.5,
        1.0,
        ("b",),
    )
    assert report.startswith("# Eval: policy-qa 1.0.0 → 1.1.0")
    assert "ConfigMap policy-qa-evals, key evalset.yaml" in report
    assert "http://svc:8000" in report


def test_the_report_configmap_is_owned_by_its_version() -> None:
    call = EvalCall(NEW, "policy-qa", "1.1.0", None, GATE)
    body = build_report_configmap(call, "# report", "uid-1")
    assert body["metadata"]["name"] == f"{NEW}-eval-report"
    assert body["metadata"]["ownerReferences"][0] == {
        "apiVersion": "promptrollouts.io/v1alpha1",
        "kind": "PromptVersion",
        "name": NEW,
        "uid": "uid-1",
    }
    assert body["data"] == {"report.md": "# report"}
    long_name = EvalCall("x" * 253, "policy-qa", "1.1.0", None, GATE)
    assert len(build_report_configmap(long_name, "", None)["metadata"]["name"]) == 253


# --- the rollout around a run -----------------------------------------------------------


def version(v: str, phase: Phase | None, weight: int | None, **status: Any) -> VersionView:
    request = parse_request(status.pop("request", None))
    gate = status.pop("gate", GATE)
    rollout = BASE.rollout.model_copy(update={"eval_gate": gate})
    spec = BASE.model_copy(update={"version": v, "rollout": rollout})
    return VersionView(
        name="policy-qa-" + v.replace(".", "-"),
        spec=spec,
        status=PromptVersionStatus(phase=phase, weight=weight, **status),
        request=request,
    )


STABLE = version("1.0.0", Phase.STABLE, 100, gate=None)
PASSED = EvalOutcome(True, "1.1.0 passes 2/2", summary="1.1.0 passes 2/2", cases=2, pass_rate=1.0)
FAILED = EvalOutcome(False, "1 regression(s) (b)", summary="1.1.0 passes 1/2", report="r-cm")


def settle(
    views: Sequence[VersionView], outcome: EvalOutcome | None
) -> tuple[dict[str, Change], list[EvalCall]]:
    """Decide, answering the eval run asked for with `outcome` (as the kopf layer)."""
    changes, calls, evals = decide_with_evals(views, None, T0, (), {}, {})
    assert calls == []
    if not evals or outcome is None:
        return {c.name: c for c in changes}, evals
    answered: Mapping[str, EvalOutcome] = {call.name: outcome for call in evals}
    changes, _, again = decide_with_evals(views, None, T0, (), {}, answered)
    assert again == []
    return {c.name: c for c in changes}, evals


def test_a_new_version_asks_for_a_run_against_the_stable_one_and_waits() -> None:
    changes, asked = settle([STABLE, version("1.1.0", None, None)], None)
    assert asked == [EvalCall(NEW, "policy-qa", "1.1.0", "1.0.0", GATE)]
    assert NEW not in changes  # still Pending, no traffic, nothing written yet


def test_a_passed_run_starts_the_rollout_and_is_recorded() -> None:
    changes, _ = settle([STABLE, version("1.1.0", None, None)], PASSED)
    status = changes[NEW].status
    assert (status.phase, status.weight, status.step_index) == (Phase.PROGRESSING, 10, 0)
    assert status.eval_gate is not None
    recorded = EvalGateResult.model_validate(status.eval_gate)
    assert (recorded.result, recorded.baseline, recorded.cases) == ("Passed", "1.0.0", 2)
    assert recorded.eval_set == "policy-qa-evals/evalset.yaml"
    assert ("Normal", "EvalGatePassed", "1.1.0 passes 2/2") in changes[NEW].events


def test_a_failed_run_stops_the_version_without_traffic() -> None:
    changes, _ = settle([STABLE, version("1.1.0", None, None)], FAILED)
    status = changes[NEW].status
    assert (status.phase, status.weight) == (Phase.ABORTED, 0)
    assert status.message == "stopped by the eval gate: 1 regression(s) (b)"
    degraded = next(c for c in status.conditions or [] if c.type == "Degraded")
    assert degraded.status == "True"
    assert status.eval_gate is not None and status.eval_gate["result"] == "Failed"
    assert status.eval_gate["report"] == "r-cm"
    assert (
        "Warning",
        "EvalGateFailed",
        "1 regression(s) (b); full report: ConfigMap r-cm",
    ) in changes[NEW].events
    assert "policy-qa-1-0-0" not in changes  # the stable version keeps 100 %


def stored(result: str) -> dict[str, Any]:
    return {
        "result": result,
        "reason": "1 regression(s) (b)",
        "time": "2026-12-03T11:00:00Z",
    }


def test_a_stored_pass_is_not_run_again_after_a_restart() -> None:
    pending = version("1.1.0", None, None, eval_gate=stored("Passed"))
    changes, asked = settle([STABLE, pending], None)
    assert asked == []
    assert changes[NEW].status.phase is Phase.PROGRESSING


def test_a_stored_failure_is_not_run_again_and_keeps_the_version_stopped() -> None:
    pending = version("1.1.0", None, None, eval_gate=stored("Failed"))
    changes, asked = settle([STABLE, pending], None)
    assert asked == []
    assert changes[NEW].status.phase is Phase.ABORTED
    aborted = version("1.1.0", Phase.ABORTED, 0, eval_gate=stored("Failed"))
    changes, asked = settle([STABLE, aborted], None)
    assert (asked, changes) == ([], {})


def test_a_retry_by_hand_runs_the_gate_afresh() -> None:
    aborted = version("1.1.0", Phase.ABORTED, 0, eval_gate=stored("Failed"), request="retry@1")
    changes, asked = settle([STABLE, aborted], PASSED)
    assert [c.name for c in asked] == [NEW]
    status = changes[NEW].status
    assert (status.phase, status.weight, status.handled_request) == (
        Phase.PROGRESSING,
        10,
        "retry@1",
    )
    assert status.eval_gate is not None and status.eval_gate["result"] == "Passed"


def test_a_first_version_becomes_stable_without_a_run() -> None:
    changes, asked = settle([version("1.0.0", None, None)], None)
    assert asked == []
    assert changes["policy-qa-1-0-0"].status.phase is Phase.STABLE


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://user:token@svc.ns.svc:8000/base?key=s3cret#x", "http://svc.ns.svc:8000/base"),
    ],
    ids=["plain", "credentials-and-query"],
)
def test_the_service_url_is_shown_without_credentials(url: str, shown: str) -> None:
    assert _shown(url) == shown
