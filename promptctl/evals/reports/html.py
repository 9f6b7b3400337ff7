"""The change-impact report: one self-contained HTML file (pure; no scripts, no network).

Sections: the verdict and a summary (pass rate per version, regressions, improvements,
cost and latency deltas), three inline SVG charts (pass rate by check type, latency
distribution per version, cost per answer), every case side by side with the differing
words marked, and the spec diff between the versions. Everything from the eval set,
the answers or the manifests is escaped.
"""

from __future__ import annotations

from html import escape

from promptctl.evals.reports.charts import render_grouped_bars, render_histogram
from promptctl.evals.reports.worddiff import render_word_diff
from prompting.evals.comparison import CaseComparison, CaseStatus, Comparison
from prompting.evals.gates import Verdict
from prompting.evals.markdown import render_verdict
from prompting.evals.meta import ReportMeta
from prompting.evals.scoring import CaseResult

__all__ = ["render_html"]

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem}
h1{font-size:1.5rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.3rem .5rem;
vertical-align:top;text-align:left}th{background:#f5f5f5}.num{text-align:right}
.verdict{padding:.6rem 1rem;border-radius:4px;font-weight:600}
.pass{background:#e6f4ea;color:#14532d}.fail{background:#fde8e8;color:#7f1d1d}
.status-regression{color:#b91c1c;font-weight:600}.status-improvement{color:#15803d;font-weight:600}
.answers{display:grid;grid-template-columns:1fr 1fr;gap:1rem}.answers div{background:#fafafa;
padding:.5rem;border:1px solid #eee;white-space:pre-wrap;word-break:break-word}
del{background:#fecaca;text-decoration:line-through}ins{background:#bbf7d0;text-decoration:none}
details{margin:.4rem 0}summary{cursor:pointer}svg text{font:12px system-ui,sans-serif}
pre.diff{background:#fafafa;border:1px solid #eee;padding:.5rem;overflow:auto}
.diff .add{color:#166534;background:#f0fdf4}.diff .del{color:#991b1b;background:#fef2f2}
.diff .hunk{color:#6b21a8}ul.fail-list{margin:.2rem 0}
""".strip()


def _num(value: float | None, digits: int, unit: str = "", signed: bool = False) -> str:
    return "n/a" if value is None else f"{value:{'+' if signed else ''}.{digits}f}{unit}"


def _summary(comparison: Comparison, meta: ReportMeta) -> str:
    old, new, d = comparison.baseline, comparison.candidate, comparison.deltas
    rows = [
        (
            "Pass rate",
            f"{old.passed}/{old.cases} ({old.pass_rate:.1%})",
            f"{new.passed}/{new.cases} ({new.pass_rate:.1%})",
            _num(d.pass_rate * 100, 1, " pp", True),
        ),
        ("Regressions", "", str(len(comparison.regressions)), ""),
        ("Improvements", "", str(len(comparison.with_status(CaseStatus.IMPROVEMENT))), ""),
        ("Flaky cases", str(old.flaky), str(new.flaky), ""),
        (
            "Mean latency",
            _num(old.mean_latency_ms, 1, " ms"),
            _num(new.mean_latency_ms, 1, " ms"),
            _num(d.mean_latency_ms, 1, " ms", True),
        ),
        (
            "Mean cost per answer (USD)",
            _num(old.mean_cost_usd, 6),
            _num(new.mean_cost_usd, 6),
            _num(d.mean_cost_usd, 6, "", True),
        ),
        (
            "Mean output tokens",
            _num(old.mean_output_tokens, 1),
            _num(new.mean_output_tokens, 1),
            _num(d.mean_output_tokens, 1, "", True),
        ),
    ]
    head = (
        f"<tr><th></th><th>{escape(meta.baseline)} (baseline)</th>"
        f"<th>{escape(meta.candidate)} (candidate)</th><th>Δ</th></tr>"
    )
    body = "".join(
        f'<tr><th>{escape(n)}</th><td class="num">{escape(a)}</td>'
        f'<td class="num">{escape(b)}</td><td class="num">{escape(c)}</td></tr>'
        for n, a, b, c in rows
    )
    return f'<table id="summary">{head}{body}</table>'


def _charts(comparison: Comparison, meta: ReportMeta) -> str:
    old, new = comparison.baseline, comparison.candidate
    names = sorted(set(old.checks) | set(new.checks))

    def rate(checks: dict[str, list[int]], name: str) -> float | None:
        passed, total = checks.get(name, [0, 0])
        return passed / total if total else None

    by_check = render_grouped_bars(
        "pass-rate-by-check",
        "Pass rate by check type (answered runs)",
        names,
        {
            meta.baseline: [rate(old.checks, n) for n in names],
            meta.candidate: [rate(new.checks, n) for n in names],
        },
        maximum=1.0,
    )
    latency = render_histogram(
        "latency",
        "Latency distribution per version (answered runs)",
        {meta.baseline: old.latencies_ms, meta.candidate: new.latencies_ms},
        unit=" ms",
    )
    ids = [c.case_id for c in comparison.cases]
    cost = render_grouped_bars(
        "cost-per-answer",
        "Mean cost per answer, by case (USD)",
        ids,
        {
            meta.baseline: [c.baseline.cost_usd if c.baseline else None for c in comparison.cases],
            meta.candidate: [c.candidate.cost_usd for c in comparison.cases],
        },
        unit=" USD",
    )
    return (
        f"<h3>Pass rate by check type</h3>{by_check}"
        f"<h3>Latency distribution</h3>{latency}"
        f"<h3>Cost per answer</h3>{cost}"
    )


def _side(version: str, result: CaseResult | None, answer_html: str) -> str:
    if result is None:
        return f"<div><strong>{escape(version)}</strong>: no result</div>"
    runs = f" {result.passed_runs}/{len(result.runs)} runs" if len(result.runs) > 1 else ""
    verdict = "passed" if result.passed else "failed"
    failures = "".join(f"<li>{escape(f)}</li>" for f in result.failures)
    listed = f'<ul class="fail-list">{failures}</ul>' if failures else ""
    return (
        f"<div><strong>{escape(version)}</strong>: {verdict}{runs} ({escape(result.outcome)})"
        f'{listed}<p class="answer">{answer_html}</p></div>'
    )


def _case(case: CaseComparison, meta: ReportMeta) -> str:
    old_answer = case.baseline.answer if case.baseline else ""
    left, right = render_word_diff(old_answer, case.candidate.answer)
    is_open = " open" if case.status in (CaseStatus.REGRESSION, CaseStatus.IMPROVEMENT) else ""
    return (
        f'<details class="case" id="case-{escape(case.case_id)}" '
        f'data-status="{case.status.value}"{is_open}>'
        f"<summary><code>{escape(case.case_id)}</code> — "
        f'<span class="status-{case.status.value}">{case.status.value}</span></summary>'
        f"<p>Question: {escape(case.candidate.question)}</p>"
        f'<div class="answers">{_side(meta.baseline, case.baseline, left)}'
        f"{_side(meta.candidate, case.candidate, right)}</div></details>"
    )


def _diff_line(line: str) -> str:
    kind = ""
    if line.startswith(("+++", "---")):
        kind = "file"
    elif line.startswith("+"):
        kind = "add"
    elif line.startswith("-"):
        kind = "del"
    elif line.startswith("@@"):
        kind = "hunk"
    return f'<span class="{kind}">{escape(line)}</span>' if kind else escape(line)


def render_html(comparison: Comparison, meta: ReportMeta, verdict: Verdict) -> str:
    """The whole report as one HTML document."""
    line = render_verdict(comparison, meta, verdict)
    title = f"Eval: {meta.prompt} {meta.baseline} → {meta.candidate}"
    source = f", baseline from {meta.baseline_report}" if meta.baseline_report else ""
    ordered = sorted(
        comparison.cases,
        key=lambda c: (
            [CaseStatus.REGRESSION, CaseStatus.IMPROVEMENT].index(c.status)
            if c.status in (CaseStatus.REGRESSION, CaseStatus.IMPROVEMENT)
            else 2
        ),
    )
    if meta.spec_diff:
        diff = "\n".join(_diff_line(x) for x in meta.spec_diff.rstrip("\n").splitlines())
        spec = f'<pre class="diff" id="spec-diff">{diff}</pre>'
    else:
        spec = '<p id="spec-diff">Not available: the manifests of the versions were not found.</p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="verdict {"pass" if verdict.passed else "fail"}" id="verdict">{escape(line)}</p>'
        f"<p>Eval set <code>{escape(meta.evalset)}</code>, {len(comparison.cases)} cases, "
        f"{meta.repeat} run(s) per case (quorum {meta.pass_quorum:g}), run against "
        f"{escape(meta.target)}{escape(source)}.</p>"
        f"<h2>Summary</h2>{_summary(comparison, meta)}"
        f"<h2>Charts</h2>{_charts(comparison, meta)}"
        f"<h2>Cases</h2>{''.join(_case(c, meta) for c in ordered)}"
        f"<h2>Spec diff</h2>{spec}"
        "</body></html>\n"
    )
