"""Eval sets, scoring, comparison and the report: pure code, tested as tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prompting.evals.comparison import CaseStatus, assess_change, compare
from prompting.evals.evalset import EvalCase, EvalSetError, parse_evalset
from prompting.evals.gates import Gate, assess_gate, assess_servability
from prompting.evals.markdown import render_report
from prompting.evals.meta import ReportMeta
from prompting.evals.scoring import CaseResult, RunResult
from tests.promptctl.evals.builders import answer, case, result, score_case

SHIPPED = Path(__file__).resolve().parents[3] / "evals" / "policy-qa.yaml"
META = ReportMeta(
    prompt="policy-qa", evalset="evals/x.yaml", baseline="1.0.0", candidate="2.0.0", target="t"
)


# --- parsing ---------------------------------------------------------------------------


def test_the_shipped_eval_set_parses() -> None:
    evalset = parse_evalset(SHIPPED.read_text(encoding="utf-8"))
    assert evalset.prompt == "policy-qa"
    assert 10 <= len(evalset.cases) <= 15
    assert any(c.variables for c in evalset.cases)
    assert any(c.expect.outcome == ["unknown"] for c in evalset.cases)


def test_outcome_may_be_one_value_or_a_list() -> None:
    assert case(outcome="unknown").expect.outcome == ["unknown"]
    assert case(outcome=["answered", "fallback"]).expect.outcome == ["answered", "fallback"]


VALID_CASE = "  - id: refund\n    question: Can I get a refund?\n    expect: {outcome: answered}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prompt: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("cases: []\n", "prompt: Field required"),
        ("prompt: policy-qa\ncases: []\n", "cases: List should have at least 1 item"),
        ("prompt: Policy QA\ncases:\n" + VALID_CASE, "prompt: String should match pattern"),
        ("prompt: p\nowner: me\ncases:\n" + VALID_CASE, "owner: Extra inputs are not permitted"),
        (
            "prompt: p\ncases:\n  - id: refund\n    question: q\n    expect: {outcome: maybe}\n",
            "case 'refund' expect.outcome[0]: Input should be 'answered', 'fallback', "
            "'unknown' or 'refused'",
        ),
        (
            "prompt: p\ncases:\n  - id: refund\n    question: q\n    expect: {sources: [a.md]}\n",
            "case 'refund' expect.sources: Extra inputs are not permitted",
        ),
        (
            "prompt: p\ncases:\n  - id: refund\n    question: q\n    expect: {}\n",
            "case 'refund' expect: give at least one check",
        ),
        (
            "prompt: p\ncases:\n  - id: refund\n    question: q\n    expect: {contains_any: []}\n",
            "case 'refund' expect.contains_any: List should have at least 1 item",
        ),
        (
            "prompt: p\ncases:\n  - id: refund\n    question: q\n"
            "    expect: {not_contains: ['  ']}\n",
            "case 'refund' expect.not_contains: entries must not be blank",
        ),
        (
            "prompt: p\ncases:\n  - id: refund\n    question: q\n    expect: {max_latency_ms: 0}\n",
            "case 'refund' expect.max_latency_ms: Input should be greater than 0",
        ),
        (
            "prompt: p\ncases:\n  - id: refund\n    question: q\n"
            "    variables: {tone: [a, b]}\n    expect: {outcome: answered}\n",
            "case 'refund' variables.tone",
        ),
        (
            "prompt: p\ncases:\n  - question: q\n    expect: {outcome: answered}\n",
            "case #1 id: Field required",
        ),
        (
            "prompt: p\ncases:\n  - id: has space\n    question: q\n"
            "    expect: {outcome: unknown}\n",
            "case 'has space' id: String should match pattern",
        ),
        (
            "prompt: p\ncases:\n  - id: refund\n    expect: {outcome: answered}\n",
            "case 'refund' question: Field required",
        ),
        ("prompt: p\ncases:\n" + VALID_CASE + VALID_CASE, "cases: duplicate case id 'refund'"),
    ],
    ids=[
        "not-yaml",
        "not-a-mapping",
        "no-prompt",
        "no-cases",
        "bad-prompt-name",
        "unknown-top-field",
        "unknown-outcome",
        "unknown-expect-field",
        "no-checks",
        "empty-phrase-list",
        "blank-phrase",
        "zero-latency",
        "non-scalar-variable",
        "case-without-id",
        "id-with-space",
        "no-question",
        "duplicate-id",
    ],
)
def test_invalid_eval_sets_name_the_case_and_field(text: str, expected: str) -> None:
    with pytest.raises(EvalSetError) as caught:
        parse_evalset(text)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


# --- scoring ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expect", "response", "failures"),
    [
        ({"outcome": "answered"}, answer(), []),
        (
            {"outcome": "answered"},
            answer(outcome="unknown"),
            ["outcome: got unknown, expected answered"],
        ),
        ({"outcome": ["answered", "fallback"]}, answer(outcome="fallback"), []),
        ({"sources_any": ["refunds.md", "digital-goods.md"]}, answer(), []),
        (
            {"sources_any": ["refunds.md"]},
            answer(),
            ["sources_any: cited digital-goods.md, expected one of refunds.md"],
        ),
        (
            {"sources_any": ["refunds.md"]},
            answer(citations=[]),
            ["sources_any: cited nothing, expected one of refunds.md"],
        ),
        ({"contains_any": ["30 days", "14  days"]}, answer(), []),
        (
            {"contains_any": ["30 days", "5 business days"]},
            answer(),
            ["contains_any: the answer has none of '30 days', '5 business days'"],
        ),
        ({"not_contains": ["as an AI language model"]}, answer(), []),
        (
            {"not_contains": ["As an AI language model", "refunded"]},
            answer(answer="as an ai language model, digital items are REFUNDED"),
            [
                "not_contains: the answer has 'As an AI language model'",
                "not_contains: the answer has 'refunded'",
            ],
        ),
        ({"max_latency_ms": 120}, answer(), []),
        (
            {"max_latency_ms": 100},
            answer(),
            ["max_latency_ms: took 120.0 ms, limit 100 ms"],
        ),
        (
            {"outcome": "unknown", "contains_any": ["not covered"]},
            answer(),
            [
                "outcome: got answered, expected unknown",
                "contains_any: the answer has none of 'not covered'",
            ],
        ),
        (
            {"outcome": "answered"},
            {"status": 503, "title": "Model unavailable", "detail": "every model failed"},
            ["request failed: HTTP 503 Model unavailable: every model failed"],
        ),
    ],
    ids=[
        "outcome-ok",
        "outcome-wrong",
        "outcome-in-list",
        "source-any-ok",
        "source-missing",
        "nothing-cited",
        "phrase-any-case-and-spacing",
        "phrase-missing",
        "forbidden-absent",
        "forbidden-present-any-case",
        "latency-at-limit",
        "latency-over",
        "several-failures",
        "problem-fails-every-case",
    ],
)
def test_score_case(expect: dict[str, Any], response: dict[str, Any], failures: list[str]) -> None:
    scored = score_case(case(**expect), response)
    assert scored.failures == failures
    assert scored.passed is (not failures)
    assert scored.case_id == "c1"


def test_score_case_keeps_outcome_and_usage() -> None:
    scored = score_case(case(outcome="answered"), answer())
    assert (scored.outcome, scored.latency_ms, scored.input_tokens, scored.output_tokens) == (
        "answered",
        120.0,
        300,
        40,
    )
    assert scored.cost_usd == 0.001
    problem = score_case(case(outcome="answered"), {"status": 404, "title": "Prompt not found"})
    assert (problem.outcome, problem.latency_ms, problem.input_tokens) == ("HTTP 404", None, None)


# --- comparison ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "candidate", "status"),
    [
        (True, True, CaseStatus.SAME_PASS),
        (False, False, CaseStatus.SAME_FAIL),
        (True, False, CaseStatus.REGRESSION),
        (False, True, CaseStatus.IMPROVEMENT),
    ],
    ids=["same-pass", "same-fail", "regression", "improvement"],
)
def test_assess_change(baseline: bool, candidate: bool, status: CaseStatus) -> None:
    assert assess_change(baseline, candidate) is status


def four_cases() -> tuple[list[CaseResult], list[CaseResult]]:
    baseline = [
        result("keeps", True, latency_ms=100.0, input_tokens=300, output_tokens=40, cost_usd=0.002),
        result(
            "breaks", True, latency_ms=200.0, input_tokens=100, output_tokens=20, cost_usd=0.004
        ),
        result("fixed", False, latency_ms=300.0, input_tokens=200, output_tokens=30, cost_usd=0.0),
        result("never", False),
    ]
    candidate = [
        result("never", False),
        result("fixed", True, latency_ms=50.0, input_tokens=100, output_tokens=10, cost_usd=0.001),
        result("breaks", False, latency_ms=150.0, input_tokens=100, output_tokens=10, cost_usd=0.0),
        result("keeps", True, latency_ms=100.0, input_tokens=100, output_tokens=10, cost_usd=0.002),
    ]
    return baseline, candidate


def test_compare_pairs_cases_by_id_in_candidate_order() -> None:
    comparison = compare(*four_cases())
    assert [(c.case_id, c.status) for c in comparison.cases] == [
        ("never", CaseStatus.SAME_FAIL),
        ("fixed", CaseStatus.IMPROVEMENT),
        ("breaks", CaseStatus.REGRESSION),
        ("keeps", CaseStatus.SAME_PASS),
    ]
    assert [c.case_id for c in comparison.regressions] == ["breaks"]


def test_compare_summaries_skip_missing_metrics_and_give_deltas() -> None:
    comparison = compare(*four_cases())
    old, new, delta = comparison.baseline, comparison.candidate, comparison.deltas
    assert (old.cases, old.passed, old.pass_rate) == (4, 2, 0.5)
    assert (new.cases, new.passed, new.pass_rate) == (4, 2, 0.5)
    assert old.mean_latency_ms == pytest.approx(200.0)
    assert new.mean_latency_ms == pytest.approx(100.0)
    assert (old.mean_input_tokens, new.mean_input_tokens) == (200.0, 100.0)
    assert (old.mean_output_tokens, new.mean_output_tokens) == (30.0, 10.0)
    assert old.mean_cost_usd == pytest.approx(0.002)
    assert new.mean_cost_usd == pytest.approx(0.001)
    assert delta.pass_rate == 0.0
    assert delta.mean_latency_ms == pytest.approx(-100.0)
    assert delta.mean_input_tokens == pytest.approx(-100.0)
    assert delta.mean_output_tokens == pytest.approx(-20.0)
    assert delta.mean_cost_usd == pytest.approx(-0.001)


def test_compare_without_metrics_has_no_means() -> None:
    comparison = compare([result("a", False)], [result("a", True)])
    assert comparison.baseline.mean_latency_ms is None
    assert comparison.deltas.mean_latency_ms is None
    assert comparison.deltas.pass_rate == 1.0


def test_compare_marks_cases_without_a_baseline_new_and_lists_removed_ones() -> None:
    comparison = compare(
        [result("a", True), result("gone", True)], [result("a", True), result("b", False)]
    )
    assert [(c.case_id, c.status) for c in comparison.cases] == [
        ("a", CaseStatus.SAME_PASS),
        ("b", CaseStatus.NEW),
    ]
    assert comparison.removed == ["gone"]
    assert comparison.cases[1].baseline is None
    assert comparison.regressions == []


def test_compare_refuses_duplicate_case_ids() -> None:
    with pytest.raises(ValueError, match="unique"):
        compare([result("a", True)], [result("a", True), result("a", False)])


# --- report ----------------------------------------------------------------------------


def test_report_lists_regressions_first_with_their_failing_checks() -> None:
    report = render_report(compare(*four_cases()), META)
    regressions = report.index("## Regressions (1)")
    improvements = report.index("## Improvements (1)")
    every_case = report.index("## All cases")
    assert regressions < improvements < every_case
    regression_section = report[regressions:improvements]
    assert "### `breaks`" in regression_section
    assert "contains_any: breaks missed the fact" in regression_section
    assert "`fixed`" not in regression_section
    assert "### `fixed`" in report[improvements:every_case]


def test_report_verdict_and_numbers() -> None:
    report = render_report(compare(*four_cases()), META)
    lines = report.splitlines()
    assert lines[0] == "# Eval: policy-qa 1.0.0 → 2.0.0"
    assert lines[2] == (
        "**FAIL: 1 regression(s) (breaks); 2.0.0 passes 2/4, 1.0.0 passes 2/4; "
        "1 case(s) fail on both versions**"
    )
    assert "| Passed | 2/4 (50.0%) | 2/4 (50.0%) | +0.0 pp |" in lines
    assert "| Mean latency | 200.0 ms | 100.0 ms | -100.0 ms |" in lines
    assert "| Mean input tokens | 200.0 | 100.0 | -100.0 |" in lines
    assert "| Mean output tokens | 30.0 | 10.0 | -20.0 |" in lines
    assert "| Mean cost (USD) | 0.002000 | 0.001000 | -0.001000 |" in lines
    assert "Cases: same-pass: 1 · same-fail: 1 · regression: 1 · improvement: 1" in lines
    assert (
        "| `breaks` | regression | ✓ answered | ✗ unknown | contains_any: breaks missed the fact |"
        in lines
    )
    assert "| `keeps` | same-pass | ✓ answered | ✓ answered |  |" in lines


def test_report_passes_without_regressions_and_escapes_table_cells() -> None:
    failing = CaseResult(
        case_id="a",
        question="q",
        runs=[
            RunResult(passed=False, outcome="answered", failures=["contains_any: none of 'x|y'"])
        ],
    )
    passing = CaseResult(
        case_id="b", question="q", runs=[RunResult(passed=True, outcome="answered")]
    )
    report = render_report(compare([failing, passing], [failing, passing]), META)
    assert "**PASS: no regressions; 2.0.0 passes 1/2, 1.0.0 passes 1/2" in report
    assert "## Regressions (0)\n\nNone." in report
    assert "| Mean latency | n/a | n/a | n/a |" in report
    assert "none of 'x\\|y'" in report


# --- gates -----------------------------------------------------------------------------


def errored(case_id: str, status: int = 503) -> CaseResult:
    return score_case(
        EvalCase.model_validate({"id": case_id, "question": "q", "expect": {"outcome": "unknown"}}),
        {"status": status, "title": "Prompt not found" if status == 404 else "Model unavailable"},
    )


@pytest.mark.parametrize(
    ("results", "problem"),
    [
        ([result("a", True), result("b", False)], None),
        ([errored("a"), result("b", False)], None),
        (
            [errored("a"), errored("b")],
            "nothing could be evaluated on version 1.0.0: every request failed "
            "(first: HTTP 503 Model unavailable)",
        ),
        (
            [result("a", True), errored("b", 404)],
            "version 1.0.0 cannot be served: HTTP 404 Prompt not found",
        ),
        ([], None),
    ],
    ids=["answered", "some-errors", "every-request-failed", "a-404", "no-cases"],
)
def test_assess_servability(results: list[CaseResult], problem: str | None) -> None:
    assert assess_servability("1.0.0", results) == problem


def passes(*flags: bool) -> list[CaseResult]:
    return [result(f"c{i}", flag) for i, flag in enumerate(flags)]


@pytest.mark.parametrize(
    ("baseline", "candidate", "gate", "reasons"),
    [
        (passes(True, True, False), passes(True, True, False), Gate(), []),
        (passes(True, False), passes(True, True), Gate(), []),
        (
            passes(True, True, False),
            passes(True, False, True),
            Gate(),
            ["1 regression(s) (c1)"],
        ),
        (
            passes(True, True, False),
            passes(True, False, True),
            Gate(fail_on_regression=False),
            [],
        ),
        (
            passes(True, True, True, True),
            passes(True, True, True, False),
            Gate(min_pass_rate=0.5, fail_on_regression=False),
            [],
        ),
        (
            passes(True, True, True, True),
            passes(True, False, False, False),
            Gate(min_pass_rate=0.5, fail_on_regression=False),
            [
                "the candidate passes 1 case(s), fewer than --min-pass-rate 0.5 x the "
                "baseline's 4 = 2"
            ],
        ),
        (passes(False, False), passes(False, False), Gate(), ["the candidate passes no case"]),
        (
            passes(True, True),
            [result("c0", True), errored("c1")],
            Gate(),
            [
                "1 regression(s) (c1)",
                "the candidate passes 1 case(s), fewer than --min-pass-rate 1 x the "
                "baseline's 2 = 2",
                "1 case(s) got no answer from the candidate (c1; first: HTTP 503 Model "
                "unavailable)",
            ],
        ),
        (
            [result("c0", True), errored("c1")],
            [result("c0", True), errored("c1")],
            Gate(),
            ["1 case(s) got no answer from the candidate (c1; first: HTTP 503 Model unavailable)"],
        ),
    ],
    ids=[
        "same",
        "improvement",
        "regression",
        "regression-tolerated",
        "threshold-met",
        "below-threshold",
        "nothing-passes",
        "errors-count-as-failures",
        "errors-on-both-still-fail",
    ],
)
def test_assess_gate(
    baseline: list[CaseResult], candidate: list[CaseResult], gate: Gate, reasons: list[str]
) -> None:
    verdict = assess_gate(compare(baseline, candidate), gate)
    assert verdict.reasons == reasons
    assert verdict.passed is (not reasons)


def test_verdict_line_says_why_and_what_was_tolerated() -> None:
    comparison = compare(passes(True, True), passes(True, False))
    tolerated = assess_gate(comparison, Gate(min_pass_rate=0.5, fail_on_regression=False))
    assert render_report(comparison, META, tolerated).splitlines()[2] == (
        "**PASS: 1 regression(s) tolerated (c1); 2.0.0 passes 1/2, 1.0.0 passes 2/2**"
    )
