"""The Prometheus rules and the Grafana dashboard: valid, tested, and in step with the code.

Metric names are read from ``service.telemetry.metrics.Metrics`` and outcomes from
``service.answering.outcome.Outcome``, so renaming a metric or adding an outcome without updating
the rules, the dashboard or the runbook fails here.
"""

from __future__ import annotations

import json
import re
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.answering.outcome import Outcome
from service.telemetry.metrics import Metrics
from tests.support.prometheus import PROMTOOL

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "observability" / "prometheus"
RULE_FILES = [PROMETHEUS_DIR / "recording-rules.yaml", PROMETHEUS_DIR / "alerts.yaml"]
DASHBOARD = ROOT / "observability" / "grafana" / "prompt-rollouts.json"
RUNBOOK = ROOT / "docs" / "operations.md"

#: Metric-name suffixes of each family type in the exposition format.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
IDENTIFIER = re.compile(r"(?<![\w:.])[a-zA-Z_:][a-zA-Z0-9_:]*")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _promtool() -> str:
    if PROMTOOL is None:
        print("SKIP: promtool is not installed (run `make system-deps`)")
        pytest.skip("promtool is not installed (run `make system-deps`)")
    return PROMTOOL


def _rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules.extend(group["rules"])
    return rules


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # panels folded into a collapsed row
    return [panel for panel in panels if panel["type"] != "row"]


def _dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in _panels() for target in panel["targets"]]


def exported_names() -> set[str]:
    """Every series name the service exposes, from its registry (not hard-coded)."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def referenced_names(expr: str) -> set[str]:
    """The metric and recording-rule names a PromQL expression reads (label values aside)."""
    return set(IDENTIFIER.findall(STRING.sub('""', expr)))


def _exprs() -> list[tuple[str, str]]:
    """(where, expr) for every rule and every dashboard target."""
    rules = [(rule.get("record") or rule["alert"], rule["expr"]) for rule in _rules()]
    return rules + [(f"dashboard: {expr[:50]}", expr) for expr in _dashboard_exprs()]


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# --- promtool ------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules_passes(path: Path) -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_promtool_unit_tests_of_the_rules_pass() -> None:
    # tests.yaml names its rule files relative to itself.
    result = subprocess.run(
        [_promtool(), "test", "rules", "tests.yaml"],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROMETHEUS_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _is_dyadic(number: Fraction) -> bool:
    """Exact in binary floating point: the denominator is a power of two."""
    return number.denominator & (number.denominator - 1) == 0


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def test_rule_unit_tests_expect_only_values_exact_in_binary() -> None:
    # Prometheus sums series in no fixed order. With rates such as 100/60 the last bit of
    # a sum varied from run to run and promtool compares exactly: 0.8 came out as
    # 0.7999999999999998 in about one run in eight. Integer and dyadic rates and
    # expectations are the same in every order.
    tests = yaml.load((PROMETHEUS_DIR / "tests.yaml").read_text(encoding="utf-8"), yaml.BaseLoader)
    checked = 0
    for test in tests["tests"]:
        for case in test.get("promql_expr_test", []):
            for sample in case["exp_samples"]:
                assert _is_dyadic(Fraction(sample["value"])), f"{case['expr']}: {sample['value']}"
                checked += 1
        if not test.get("promql_expr_test"):
            continue
        by_version: dict[str, list[str]] = {}
        for series in test["input_series"]:
            labels = re.findall(r'(prompt|version)="([^"]*)"', series["series"])
            name = series["series"].split("{")[0]
            by_version.setdefault(f"{name}{sorted(labels)}", []).append(series["values"])
        for key, values in by_version.items():
            if len(values) < 2:
                continue  # a single series is never summed with another
            for notation in values:
                step = re.fullmatch(r"\S+\+(\S+)x\d+", notation)
                assert step, f"{key}: use the a+bxn notation, not {notation!r}"
                rate = Fraction(step.group(1)) / _seconds(test["interval"])
                assert _is_dyadic(rate), f"{key}: {notation!r} is {rate} per second"
                checked += 1
    assert checked >= 10


# --- names in step with the code ------------------------------------------------------


def test_the_registry_lists_the_metrics_the_rules_are_built_on() -> None:
    names = exported_names()
    assert {
        "promptrollouts_requests_total",
        "promptrollouts_request_duration_seconds_bucket",
        "promptrollouts_circuit_breaker_state",
    } <= names
    assert "promptrollouts_requests" not in names  # a counter is only exposed as *_total


@pytest.mark.parametrize(("where", "expr"), _exprs(), ids=[w for w, _ in _exprs()])
def test_every_metric_a_query_reads_is_exported_or_recorded(where: str, expr: str) -> None:
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    names = referenced_names(expr)
    raw = {n for n in names if n.startswith("promptrollouts_")}
    rule_outputs = {n for n in names if ":" in n}
    if not expr.startswith("vector("):  # constants (the budget) read nothing
        assert raw | rule_outputs, f"{where} reads no promptrollouts metric"
    assert raw <= exported_names(), f"{where}: not exported: {raw - exported_names()}"
    assert rule_outputs <= recorded, f"{where}: not recorded: {rule_outputs - recorded}"


def test_every_outcome_is_exactly_one_of_success_failure_or_invalid() -> None:
    outcomes = {o.value for o in Outcome}
    for window in ("1m", "5m"):
        exprs = {rule["record"]: rule["expr"] for rule in _rules() if "record" in rule}
        success_expr = exprs[f"prompt_version:promptrollouts_success_ratio:rate{window}"]
        error_expr = exprs[f"prompt_version:promptrollouts_error_ratio:rate{window}"]
        success = set(re.findall(r'outcome=~"([^"]+)"', success_expr)[0].split("|"))
        failure = set(re.findall(r'outcome=~"([^"]+)"', error_expr)[0].split("|"))
        assert not success & failure
        assert success | failure | {"invalid"} == outcomes, window
        assert 'outcome!="invalid"' in success_expr and 'outcome!="invalid"' in error_expr


def test_recording_rules_keep_the_prompt_and_version_labels() -> None:
    for rule in _rules():
        name = rule.get("record", "")
        if name.startswith("prompt_version"):
            assert "by (prompt, version" in rule["expr"], name


# --- alerts and runbook ---------------------------------------------------------------


def _runbook_headings() -> list[str]:
    headings, fenced = [], False
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("#"):
            headings.append(line.lstrip("#").strip())
    return headings


def test_alerts_have_for_severity_and_a_runbook_section() -> None:
    headings = _runbook_headings()
    anchors = {_slug(h) for h in headings}
    names = [alert["alert"] for alert in _alerts()]
    assert {
        "PromptHighErrorRate",
        "PromptHighLatency",
        "ModelCircuitBreakerOpen",
        "PromptBudgetBurn",
        "PromptEmptyRetrievalSpike",
    } <= set(names)
    for alert in _alerts():
        name = alert["alert"]
        assert alert.get("for"), name
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        url = alert["annotations"]["runbook_url"]
        assert url == f"docs/operations.md#{name.lower()}", name
        assert url.split("#")[1] in anchors, f"{name}: no section {url} in docs/operations.md"


def test_every_recording_rule_is_defined_in_the_runbook() -> None:
    runbook = RUNBOOK.read_text(encoding="utf-8")
    for rule in _rules():
        if "record" in rule:
            stem = re.sub(r"(1m|5m)$", "", rule["record"])  # one row covers both windows
            assert stem in runbook, rule["record"]


# --- dashboard ------------------------------------------------------------------------


def test_dashboard_has_datasource_prompt_and_version_variables() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource",
        "prometheus",
    )
    for name in ("prompt", "version"):
        assert variables[name]["type"] == "query"
        assert variables[name]["definition"].startswith("label_values(")
        assert variables[name]["datasource"]["uid"] == "${datasource}"


def test_every_panel_has_a_datasource_and_targets() -> None:
    panels = _panels()
    assert len({p["id"] for p in panels}) == len(panels)
    assert len({p["title"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"] == panel["datasource"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_dashboard_shows_the_required_signals() -> None:
    exprs = "\n".join(_dashboard_exprs())
    for needed in (
        "prompt_version:promptrollouts_requests:rate",
        "prompt_version:promptrollouts_success_ratio:rate",
        "prompt_version:promptrollouts_request_duration_seconds:p95_",
        "prompt_version:promptrollouts_request_duration_seconds:mean",
        "promptrollouts_cost_usd",
        "promptrollouts_tokens",
        "promptrollouts_circuit_breaker_state",
        "promptrollouts_version_weight_percent",
        "promptrollouts_empty_retrieval",
        "promptrollouts_upstream_requests_total",
        "prompt_version:promptrollouts_unknown_ratio:rate",
        "prompt_version:promptrollouts_refused_ratio:rate",
        "prompt_version:promptrollouts_fallback_ratio:rate",
        "prompt_version:promptrollouts_uncited_ratio:rate",
        "prompt_version:promptrollouts_answer_length_chars:mean",
        "prompt_version:promptrollouts_feedback_score:mean",
        "prompt_version:promptrollouts_feedback:rate",
    ):
        assert needed in exprs, needed


def test_quality_shares_divide_by_the_answers_sent() -> None:
    exprs = {rule["record"]: rule["expr"] for rule in _rules() if "record" in rule}
    for window in ("1m", "5m"):
        success = exprs[f"prompt_version:promptrollouts_success_ratio:rate{window}"]
        answers = set(re.findall(r'outcome=~"([^"]+)"', success)[0].split("|"))
        for kind in ("unknown", "refused", "fallback"):
            expr = exprs[f"prompt_version:promptrollouts_{kind}_ratio:rate{window}"]
            assert f'outcome="{kind}"' in expr and kind in answers, (kind, window)
            denominators = re.findall(r'outcome=~"([^"]+)"', expr)
            assert denominators and all(set(d.split("|")) == answers for d in denominators)
        uncited = exprs[f"prompt_version:promptrollouts_uncited_ratio:rate{window}"]
        assert set(re.findall(r'outcome=~"([^"]+)"', uncited)[0].split("|")) == {
            Outcome.ANSWERED.value,
            Outcome.FALLBACK.value,
        }
