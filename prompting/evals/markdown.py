"""The Markdown report: a verdict line, a summary, regressions first, every case (pure).

It is what `--markdown` / `--output` write and what the prompts workflow posts as a PR
comment; :data:`COMMENT_MARKER` lets the workflow find and update its own comment.
"""

from __future__ import annotations

from prompting.evals.comparison import CaseComparison, CaseStatus, Comparison, VersionSummary
from prompting.evals.gates import Gate, Verdict, assess_gate
from prompting.evals.meta import ReportMeta
from prompting.evals.scoring import CaseResult

__all__ = ["COMMENT_MARKER", "render_report", "render_verdict"]

#: The hidden first words of the report's last line (one comment per prompt in a PR).
COMMENT_MARKER = "<!-- promptctl-eval"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _number(value: float | None, digits: int, unit: str = "", signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:{'+' if signed else ''}.{digits}f}{unit}"


def _rate(summary: VersionSummary) -> str:
    text = f"{summary.passed}/{summary.cases} ({summary.pass_rate:.1%}"
    return text + (" weighted)" if summary.weighted else ")")


def render_verdict(comparison: Comparison, meta: ReportMeta, verdict: Verdict | None = None) -> str:
    """One line: PASS or FAIL, and why (`verdict` defaults to the default gate's)."""
    verdict = verdict or assess_gate(comparison, Gate())
    rates = (
        f"{meta.candidate} passes {comparison.candidate.passed}/{comparison.candidate.cases}, "
        f"{meta.baseline} passes {comparison.baseline.passed}/{comparison.baseline.cases}"
    )
    both = len(comparison.with_status(CaseStatus.SAME_FAIL))
    extra = f"; {both} case(s) fail on both versions" if both else ""
    flaky = comparison.candidate.flaky
    extra += f"; {flaky} flaky case(s) on {meta.candidate}" if flaky else ""
    if not verdict.passed:
        return f"FAIL: {'; '.join(verdict.reasons)}; {rates}{extra}"
    regressions = comparison.regressions
    if regressions:  # tolerated: --no-fail-on-regression
        ids = ", ".join(c.case_id for c in regressions)
        return f"PASS: {len(regressions)} regression(s) tolerated ({ids}); {rates}{extra}"
    return f"PASS: no regressions; {rates}{extra}"


def _summary_table(comparison: Comparison, meta: ReportMeta) -> list[str]:
    old, new, delta = comparison.baseline, comparison.candidate, comparison.deltas
    rows = [
        ("Passed", _rate(old), _rate(new), _number(delta.pass_rate * 100, 1, " pp", True)),
        (
            "Mean latency",
            _number(old.mean_latency_ms, 1, " ms"),
            _number(new.mean_latency_ms, 1, " ms"),
            _number(delta.mean_latency_ms, 1, " ms", True),
        ),
        (
            "Mean input tokens",
            _number(old.mean_input_tokens, 1),
            _number(new.mean_input_tokens, 1),
            _number(delta.mean_input_tokens, 1, "", True),
        ),
        (
            "Mean output tokens",
            _number(old.mean_output_tokens, 1),
            _number(new.mean_output_tokens, 1),
            _number(delta.mean_output_tokens, 1, "", True),
        ),
        (
            "Mean cost (USD)",
            _number(old.mean_cost_usd, 6),
            _number(new.mean_cost_usd, 6),
            _number(delta.mean_cost_usd, 6, "", True),
        ),
    ]
    lines = [
        f"| | {meta.baseline} (baseline) | {meta.candidate} (candidate) | Δ |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {a} | {b} | {d} |" for name, a, b, d in rows]
    statuses = [s for s in CaseStatus if s is not CaseStatus.NEW or comparison.with_status(s)]
    counts = " · ".join(f"{s.value}: {len(comparison.with_status(s))}" for s in statuses)
    return [*lines, "", f"Cases: {counts}"]


def _runs(result: CaseResult) -> str:
    return f" {result.passed_runs}/{len(result.runs)}" if len(result.runs) > 1 else ""


def _detail(case: CaseComparison, meta: ReportMeta) -> list[str]:
    lines = [f"### `{case.case_id}`", "", f"Question: {' '.join(case.candidate.question.split())}"]
    for version, result in ((meta.baseline, case.baseline), (meta.candidate, case.candidate)):
        if result is None:
            continue
        verdict = "passed" if result.passed else "failed"
        lines += ["", f"- **{version}**: {verdict}{_runs(result)} ({result.outcome})"]
        lines += [f"  - {failure}" for failure in result.failures]
        if result.answer:
            lines.append(f"  - answer: {_cell(result.answer)[:300]}")
    return [*lines, ""]


def _mark(result: CaseResult | None) -> str:
    if result is None:
        return "—"
    return ("✓ " if result.passed else "✗ ") + result.outcome + _runs(result)


def render_report(comparison: Comparison, meta: ReportMeta, verdict: Verdict | None = None) -> str:
    """The Markdown report: verdict, summary, regressions first, improvements, every case."""
    source = f" (baseline from `{meta.baseline_report}`)" if meta.baseline_report else ""
    runs = (
        f" Each case ran {meta.repeat} times and passes when {meta.pass_quorum:g} of its runs "
        "pass; `k/n` is the runs passed."
        if meta.repeat > 1
        else ""
    )
    lines = [
        f"# Eval: {meta.prompt} {meta.baseline} → {meta.candidate}",
        "",
        f"**{render_verdict(comparison, meta, verdict)}**",
        "",
        f"Eval set `{meta.evalset}`, {len(comparison.cases)} cases, run against "
        f"{meta.target}{source}.{runs}",
        "",
        "## Summary",
        "",
        *_summary_table(comparison, meta),
        "",
    ]
    if comparison.removed:
        lines += [f"Not in the eval set any more: {', '.join(comparison.removed)}.", ""]
    for title, status in (
        ("Regressions", CaseStatus.REGRESSION),
        ("Improvements", CaseStatus.IMPROVEMENT),
    ):
        chosen = comparison.with_status(status)
        lines += [f"## {title} ({len(chosen)})", ""]
        if not chosen:
            lines += ["None.", ""]
        for case in chosen:
            lines += _detail(case, meta)
    lines += [
        "## All cases",
        "",
        f"| Case | Status | {meta.baseline} | {meta.candidate} | Failed checks (candidate) |",
        "|---|---|---|---|---|",
    ]
    for case in comparison.cases:
        failures = _cell("; ".join(case.candidate.failures))
        lines.append(
            f"| `{case.case_id}` | {case.status.value} | {_mark(case.baseline)} | "
            f"{_mark(case.candidate)} | {failures} |"
        )
    if meta.spec_diff:
        fence = "````" if "```" in meta.spec_diff else "```"
        lines += [
            "",
            f"<details><summary>Spec diff {meta.baseline} → {meta.candidate}</summary>",
            "",
            f"{fence}diff",
            meta.spec_diff.rstrip("\n"),
            fence,
            "",
            "</details>",
        ]
    lines += ["", f"{COMMENT_MARKER} prompt={meta.prompt} -->"]
    return "\n".join(lines) + "\n"
