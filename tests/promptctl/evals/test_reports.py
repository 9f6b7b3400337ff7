"""The report formats: JUnit (read back with junitparser), JSON (read back as a baseline),
Markdown with repeats, the HTML change-impact report (parsed, charts checked), word diffs."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, TestSuite

from promptctl.evals.reports.charts import build_bins
from promptctl.evals.reports.document import FORMAT, ReportError, build_document, parse_baseline
from promptctl.evals.reports.html import render_html
from promptctl.evals.reports.junit import render_junit
from promptctl.evals.reports.worddiff import render_word_diff
from prompting.evals.comparison import Comparison, compare
from prompting.evals.gates import Gate, assess_gate
from prompting.evals.markdown import COMMENT_MARKER, render_report
from prompting.evals.meta import ReportMeta
from prompting.evals.scoring import CaseResult, RunResult
from tests.promptctl.evals.builders import result, run

META = ReportMeta(
    prompt="policy-qa",
    evalset="evals/policy-qa.yaml",
    baseline="1.0.0",
    candidate="1.1.0",
    target="t",
    repeat=3,
    pass_quorum=0.6,
    evalset_digest="abc",
    spec_diff="--- a\n+++ b\n@@ -1 +1 @@\n-temperature: 0.0\n+temperature: 0.2\n",
)


def runs(case_id: str, *flags: bool, **metrics: float) -> CaseResult:
    return CaseResult(
        case_id=case_id,
        question=f"Question <{case_id}>?",
        runs=[run(flag, case_id, **metrics) for flag in flags],
        required=2,
    )


def errored(case_id: str) -> CaseResult:
    failed = RunResult(
        passed=False,
        outcome="HTTP 503",
        failures=["request failed: HTTP 503 Model unavailable"],
        error="HTTP 503 Model unavailable",
    )
    return CaseResult(case_id=case_id, question="q", runs=[failed] * 3, required=2)


def results() -> dict[str, list[CaseResult]]:
    baseline = [
        runs("steady", True, True, True, latency_ms=100.0, cost_usd=0.002),
        runs("flaky", True, True, True, latency_ms=200.0, cost_usd=0.002),
        runs("broken", True, True, False, latency_ms=300.0, cost_usd=0.004),
        runs("down", True, True, True, latency_ms=50.0, cost_usd=0.001),
    ]
    candidate = [
        runs("steady", True, True, True, latency_ms=90.0, cost_usd=0.001),
        runs("flaky", True, False, True, latency_ms=120.0, cost_usd=0.001),
        runs("broken", False, False, True, latency_ms=400.0, cost_usd=0.003),
        errored("down"),
    ]
    return {"1.0.0": baseline, "1.1.0": candidate}


def comparison() -> Comparison:
    data = results()
    return compare(data["1.0.0"], data["1.1.0"])


# --- quorum ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "required", "passed", "flaky"),
    [
        ((True, True, True), 3, True, False),
        ((True, False, True), 3, False, True),
        ((True, False, True), 2, True, True),
        ((False, False, True), 2, False, True),
        ((False, False, False), 1, False, False),
    ],
    ids=["all", "one-short-of-all", "quorum-met", "quorum-missed", "none"],
)
def test_a_case_passes_when_its_quorum_of_runs_pass(
    flags: tuple[bool, ...], required: int, passed: bool, flaky: bool
) -> None:
    case = CaseResult(case_id="c", question="q", runs=[run(f) for f in flags], required=required)
    assert case.passed is passed
    assert case.flaky is flaky
    assert case.pass_fraction == pytest.approx(sum(flags) / 3)


# --- JUnit -----------------------------------------------------------------------------


def test_junit_loads_with_one_testcase_per_case_and_version(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(render_junit(results(), META), encoding="utf-8")
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert [s.name for s in suites] == ["policy-qa 1.0.0 (baseline)", "policy-qa 1.1.0 (candidate)"]
    assert (xml.tests, xml.failures, xml.errors) == (8, 1, 1)
    candidate: TestSuite = suites[1]
    cases = {c.name: c for c in candidate}
    assert set(cases) == {"steady", "flaky", "broken", "down"}
    assert all(c.classname == "policy-qa.1.1.0" for c in cases.values())
    assert cases["steady"].is_passed and cases["flaky"].is_passed
    (failure,) = cases["broken"].result
    assert isinstance(failure, Failure)
    assert failure.message == "contains_any: broken missed the fact (1/3 runs passed)"
    (error,) = cases["down"].result
    assert isinstance(error, Error)
    assert error.message == "HTTP 503 Model unavailable"
    assert cases["steady"].time == pytest.approx(0.27)


def test_junit_survives_control_characters_in_answers(tmp_path: Path) -> None:
    nasty = CaseResult(
        case_id="c",
        question="q\x00",
        runs=[RunResult(passed=False, outcome="answered", failures=["x\x1b[31m"], answer="\x07")],
    )
    path = tmp_path / "junit.xml"
    path.write_text(render_junit({"1.0.0": [nasty]}, META), encoding="utf-8")
    (suite,) = JUnitXml.fromfile(str(path))
    (case,) = suite
    assert case.result[0].message == "x\ufffd[31m"


# --- JSON ------------------------------------------------------------------------------


def test_the_json_report_reads_back_as_a_baseline() -> None:
    data, comp = results(), comparison()
    verdict = assess_gate(comp, Gate())
    text = json.dumps(build_document(data, comp, verdict, META))
    document = json.loads(text)
    assert document["format"] == FORMAT
    assert document["verdict"]["exit_code"] == 1
    assert document["cases"][2] == {"id": "broken", "status": "regression"}
    assert document["summary"]["1.1.0"]["passed"] == 2
    stored, digest = parse_baseline(text, "1.1.0", "policy-qa")
    assert digest == "abc"
    assert stored == data["1.1.0"]
    assert [c.passed for c in stored] == [True, True, False, False]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"format": "other"}', "not a promptctl eval report"),
        (f'{{"format": "{FORMAT}", "prompt": "faq-bot"}}', "prompt 'faq-bot', not 'policy-qa'"),
        (
            f'{{"format": "{FORMAT}", "prompt": "policy-qa", "results": {{"1.0.0": []}}}}',
            "no results for version 1.1.0; it has: 1.0.0",
        ),
        (
            f'{{"format": "{FORMAT}", "prompt": "policy-qa", "results": {{"1.1.0": [{{}}]}}}}',
            "results for 1.1.0 are malformed",
        ),
    ],
    ids=["not-json", "other-format", "other-prompt", "no-version", "malformed"],
)
def test_unusable_baseline_reports_say_why(text: str, message: str) -> None:
    with pytest.raises(ReportError, match=re.escape(message)):
        parse_baseline(text, "1.1.0", "policy-qa")


# --- Markdown --------------------------------------------------------------------------


def test_markdown_shows_run_fractions_errors_spec_diff_and_the_comment_marker() -> None:
    comp = comparison()
    report = render_report(comp, META, assess_gate(comp, Gate()))
    assert "Each case ran 3 times and passes when 0.6 of its runs pass" in report
    assert "| `flaky` | same-pass | ✓ answered 3/3 | ✓ answered x2, unknown x1 2/3 |" in report
    assert "| `down` | regression | ✓ answered 3/3 | ✗ HTTP 503 0/3 |" in report
    assert "2 flaky case(s) on 1.1.0" in report.splitlines()[2]
    assert "```diff\n--- a\n+++ b" in report
    assert report.rstrip().endswith(f"{COMMENT_MARKER} prompt=policy-qa -->")


# --- HTML ------------------------------------------------------------------------------


class Page(HTMLParser):
    """Collects what the tests check: tags, chart marks, external references, text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.marks: list[dict[str, str]] = []
        self.external: list[str] = []
        self.charts: list[str] = []
        self.ids: dict[str, str] = {}
        self.text: list[str] = []
        self._inside: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if "data-chart" in found:
            self.charts.append(found["data-chart"])
        if "data-value" in found:
            self.marks.append({"chart": self.charts[-1], **found})
        for key in ("src", "href"):
            if key in found:
                self.external.append(found[key])
        if "id" in found:
            self.ids[found["id"]] = tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(document: str) -> Page:
    page = Page()
    page.feed(document)
    page.close()
    return page


def test_html_is_self_contained_and_its_charts_carry_the_data() -> None:
    comp = comparison()
    page = parse(render_html(comp, META, assess_gate(comp, Gate())))
    assert "script" not in page.tags
    assert page.external == []
    assert page.charts == ["pass-rate-by-check", "latency", "cost-per-answer"]
    assert {"summary", "verdict", "spec-diff"} <= set(page.ids)

    latency = [m for m in page.marks if m["chart"] == "latency"]
    counts = {
        series: sum(int(m["data-value"]) for m in latency if m["data-series"] == series)
        for series in ("1.0.0", "1.1.0")
    }
    # Every answered run lands in one bin: 12 on the baseline, 9 on the candidate (3 errored).
    assert counts == {"1.0.0": 12, "1.1.0": 9}

    cost = {
        (m["data-series"], m["data-category"]): float(m["data-value"])
        for m in page.marks
        if m["chart"] == "cost-per-answer"
    }
    assert cost[("1.0.0", "broken")] == pytest.approx(0.004)
    assert cost[("1.1.0", "steady")] == pytest.approx(0.001)
    assert ("1.1.0", "down") not in cost  # no answer, no cost


def test_html_pass_rate_by_check_type() -> None:
    old = [
        CaseResult(
            case_id="a",
            question="q",
            runs=[
                RunResult(
                    passed=True,
                    outcome="answered",
                    checks=[{"name": "regex", "passed": True}, {"name": "outcome", "passed": True}],
                )
            ],
        )
    ]
    new = [
        CaseResult(
            case_id="a",
            question="q",
            runs=[
                RunResult(
                    passed=False,
                    outcome="answered",
                    checks=[
                        {"name": "regex", "passed": False},
                        {"name": "outcome", "passed": True},
                    ],
                )
            ],
        )
    ]
    comp = compare(old, new)
    page = parse(render_html(comp, META, assess_gate(comp, Gate())))
    rates = {
        (m["data-series"], m["data-category"]): float(m["data-value"])
        for m in page.marks
        if m["chart"] == "pass-rate-by-check"
    }
    assert rates == {
        ("1.0.0", "outcome"): 1.0,
        ("1.1.0", "outcome"): 1.0,
        ("1.0.0", "regex"): 1.0,
        ("1.1.0", "regex"): 0.0,
    }


def test_html_escapes_everything_from_answers_and_questions() -> None:
    hostile = '<script>alert(1)</script><img src="http://evil.example/x.png">'
    case = CaseResult(
        case_id="c",
        question=hostile,
        runs=[RunResult(passed=True, outcome="answered", answer=hostile)],
    )
    comp = compare([case], [case])
    document = render_html(comp, META, assess_gate(comp, Gate()))
    page = parse(document)
    assert "script" not in page.tags
    assert "img" not in page.tags
    assert page.external == []
    assert hostile in "".join(page.text)


def test_html_side_by_side_marks_the_differing_words() -> None:
    old = result("c", True, answer="Refunds within 14 days of delivery.")
    new = result("c", False, answer="Refunds within 30 days of delivery.")
    old = old.model_copy(update={"runs": [run(True, answer="Refunds within 14 days of delivery.")]})
    new = new.model_copy(
        update={"runs": [run(False, answer="Refunds within 30 days of delivery.")]}
    )
    comp = compare([old], [new])
    document = render_html(comp, META, assess_gate(comp, Gate()))
    assert "Refunds within <del>14</del> days of delivery." in document
    assert "Refunds within <ins>30</ins> days of delivery." in document
    assert 'data-status="regression" open' in document
    assert '<span class="del">-temperature: 0.0</span>' in document


@pytest.mark.parametrize(
    ("old", "new", "left", "right"),
    [
        ("a b c", "a b c", "a b c", "a b c"),
        ("a b c", "a x c", "a <del>b</del> c", "a <ins>x</ins> c"),
        ("", "new text", "", "<ins>new text</ins>"),
        ("<b>", "<i>", "<del>&lt;b&gt;</del>", "<ins>&lt;i&gt;</ins>"),
    ],
    ids=["same", "one-word", "from-nothing", "escaped"],
)
def test_word_diff(old: str, new: str, left: str, right: str) -> None:
    assert render_word_diff(old, new) == (left, right)


@pytest.mark.parametrize(
    ("values", "count", "bins"),
    [
        ([], 4, []),
        ([5.0, 5.0], 4, [(5.0, 6.0)]),
        ([0.0, 10.0], 2, [(0.0, 5.0), (5.0, 10.0)]),
    ],
    ids=["empty", "all-equal", "spread"],
)
def test_build_bins(values: list[float], count: int, bins: list[tuple[float, float]]) -> None:
    assert build_bins(values, count) == bins
