"""What a rehearsal concludes from what it saw: timeline, result, expectations, report (pure)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rehearsal.report import render_report
from rehearsal.timeline import Recorder, assess_expectations, build_result, decide_signal
from rehearsal.view import build_table, render_change, render_summary


def _status(phase: str, weight: int, verdict: str | None = None, **more: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "weight": weight, **more}
    if verdict:
        status["lastAnalysis"] = {"time": more.get("at", "t"), "verdict": verdict, "reasons": []}
    return status


RATES = {"1.0.0": {"requests": 10, "errorRate": 0.0}, "1.1.0": {"requests": 3, "errorRate": 0.5}}


def _rolled_back() -> Recorder:
    recorder = Recorder(["1.0.0", "1.1.0"])
    recorder.observe(0.0, {"1.0.0": _status("Stable", 100), "1.1.0": {}}, RATES)
    recorder.observe(
        0.5, {"1.0.0": _status("Stable", 80), "1.1.0": _status("Progressing", 20)}, RATES
    )
    recorder.observe(
        2.04,
        {"1.0.0": _status("Stable", 80), "1.1.0": _status("Progressing", 20, "Failed", at="a1")},
        RATES,
    )
    recorder.observe(
        2.5,
        {"1.0.0": _status("Stable", 80), "1.1.0": _status("Progressing", 20, "Failed", at="a1")},
        RATES,
    )
    recorder.observe(
        4.0,
        {
            "1.0.0": _status("Stable", 100),
            "1.1.0": _status(
                "RolledBack", 0, "Failed", at="a2", message="rolled back: error rate 0.5 > 0.05"
            ),
        },
        RATES,
    )
    return recorder


def test_the_timeline_keeps_changes_only_and_every_analysis_once() -> None:
    recorder = _rolled_back()

    changes = [(e["t"], e["version"], e["phase"], e["weight"]) for e in recorder.timeline]
    assert changes == [
        (0.0, "1.0.0", "Stable", 100),
        (0.5, "1.0.0", "Stable", 80),
        (0.5, "1.1.0", "Progressing", 20),
        (2.0, "1.1.0", "Progressing", 20),
        (4.0, "1.0.0", "Stable", 100),
        (4.0, "1.1.0", "RolledBack", 0),
    ]
    assert [(a["t"], a["verdict"]) for a in recorder.analyses] == [(2.0, "Failed"), (4.0, "Failed")]
    assert len(recorder.samples) == 5


def test_the_result_has_the_documented_shape() -> None:
    result = build_result(_rolled_back(), notes=["n"], extra={"speed": 4})

    assert result["versions"] == {
        "1.0.0": {
            "phase": "Stable",
            "maxWeight": 100,
            "shadowSamples": None,
            "decidedAfterSeconds": None,
            "reason": "",
            "signal": None,
        },
        "1.1.0": {
            "phase": "RolledBack",
            "maxWeight": 20,
            "shadowSamples": None,
            "decidedAfterSeconds": 4.0,
            "reason": "rolled back: error rate 0.5 > 0.05",
            "signal": "errorRate",
        },
    }
    assert set(result) == {"versions", "analyses", "timeline", "notes", "speed"}


def test_a_canary_rolled_back_in_its_shadow_step_has_max_weight_0() -> None:
    recorder = Recorder(["1.0.0", "1.1.0"])
    shadow = {"phase": "Progressing", "weight": 0, "stepKind": "Shadow", "shadowPercent": 100}
    failed = {"verdict": "Failed", "time": "a1", "mode": "shadow", "reasons": ["error rate"]}
    recorder.observe(0.0, {"1.0.0": _status("Stable", 100), "1.1.0": shadow}, RATES)
    recorder.observe(
        1.0,
        {"1.0.0": _status("Stable", 100), "1.1.0": shadow | {"lastAnalysis": failed}},
        RATES,
    )
    rolled_back = {"phase": "RolledBack", "weight": 0, "stepKind": "Shadow", "shadowSamples": 40}
    recorder.observe(2.0, {"1.0.0": _status("Stable", 100), "1.1.0": rolled_back}, RATES)

    result = build_result(recorder)

    assert result["versions"]["1.1.0"]["maxWeight"] == 0
    assert result["versions"]["1.1.0"]["shadowSamples"] == 40
    assert [a["mode"] for a in result["analyses"]] == ["shadow"]
    assert [e["stepKind"] for e in result["timeline"] if e["version"] == "1.1.0"] == [
        "Shadow",
        "Shadow",
        "Shadow",
    ]


@pytest.mark.parametrize(
    ("reason", "signal"),
    [
        ("rolled back: error rate 0.72 > maxErrorRate 0.05; p95 latency 550 ms", "errorRate"),
        ("rolled back: p95 latency 2364 ms > maxP95LatencyMs 500", "p95LatencyMs"),
        ("unknown rate 31 % vs 12 % stable, +19 pts, p < 0.001", "unknownRate"),
        ("refused rate 20 % vs 1 % stable", "refusedRate"),
        ("feedback score 0.2 vs 0.8 stable", "feedbackNegative"),
        ("aborted by a person", "errorRate"),
    ],
)
def test_the_deciding_signal_is_the_first_one_the_reason_names(reason: str, signal: str) -> None:
    assert decide_signal(reason) == signal


@pytest.mark.parametrize(
    ("expect", "unmet"),
    [
        ({}, []),
        ({"1.1.0": "RolledBack"}, []),
        ({"1.1.0": "Promoted"}, ["1.1.0: expected Promoted, got RolledBack"]),
        (
            {"1.0.0": "Superseded", "1.1.0": "RolledBack"},
            ["1.0.0: expected Superseded, got Stable"],
        ),
        ({"2.0.0": "Promoted"}, ["2.0.0: expected Promoted, got no phase"]),
    ],
)
def test_expectations(expect: dict[str, str], unmet: list[str]) -> None:
    versions = build_result(_rolled_back())["versions"]

    assert assess_expectations(expect, versions) == unmet


def test_views_render_changes_tables_and_summaries() -> None:
    recorder = _rolled_back()
    result = build_result(recorder, extra={"scenario": "s.yaml", "elapsedSeconds": 4.0})

    assert render_change(recorder.timeline[-1]) == (
        "[   4.0s] 1.1.0 RolledBack weight 0 verdict Failed - rolled back: error rate 0.5 > 0.05"
    )
    assert build_table(4.0, recorder, RATES).row_count == 2
    summary = render_summary(result, ["1.1.0: expected Promoted, got RolledBack"])
    assert "1.1.0: RolledBack after 4 s, max weight 20" in summary
    assert "EXPECTATION NOT MET: 1.1.0: expected Promoted, got RolledBack" in summary


def test_the_report_is_self_contained_and_charts_weights_and_the_signal() -> None:
    recorder = _rolled_back()
    result = build_result(recorder, extra={"scenario": "<b>s.yaml</b>", "speed": 4})

    page = render_report(result, recorder.samples)

    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script|\bsrc=|<link|https?://(?!www\.w3\.org/2000/svg)", page)
    assert page.count("<svg") == 2
    assert page.count("<polyline") == 4  # a weight line and a signal line per version
    assert "decided by 1.1.0&#x27;s error rate" in page
    assert "<b>s.yaml</b>" not in page  # escaped
    assert 'stroke="#d62728"/>' in page  # Failed analyses are marked
