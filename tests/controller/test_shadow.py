"""Shadow steps in the state machine and the analysis (pure): live weight 0, the shadow share
in status, its end the moment the step ends, and the shadow analysis' queries and checks."""

from __future__ import annotations

import pytest

from api.v1alpha1 import Analysis, MetricCheck, Phase, RolloutStep, ShadowStep, StepKind
from controller.analysis import Measurement, VersionSample, build_queries
from controller.quality import build_quality_queries
from controller.shadow import build_shadow_analysis, decide_step_status, step_mode
from tests.controller.test_rollout import Sim, make_spec, pv

SHADOW = RolloutStep(shadow=ShadowStep(percent=25, duration="2m"))
STEPS = [SHADOW, RolloutStep(weight=20, pause="1m")]
#: The canary's shadow answers: enough, healthy / failing.
HEALTHY = Measurement(
    canary=VersionSample(requests=100, errors=0, p95_ms=300),
    stable=VersionSample(requests=500, errors=0, p95_ms=300),
    mode="shadow",
)
FAILING = Measurement(
    canary=VersionSample(requests=100, errors=60, p95_ms=300),
    stable=VersionSample(requests=500, errors=0, p95_ms=300),
    mode="shadow",
)


def _shadowing() -> Sim:
    sim = Sim([pv("1.0.0", Phase.STABLE, 100), pv("1.1.0", spec=make_spec("1.1.0", steps=STEPS))])
    sim.decide()
    return sim


def test_a_shadow_step_starts_with_live_weight_0_and_the_shadow_share_in_status() -> None:
    sim = _shadowing()

    canary = sim["1.1.0"].status
    assert sim.state() == {"1.0.0": (Phase.STABLE, 100), "1.1.0": (Phase.PROGRESSING, 0)}
    assert (canary.step_index, canary.step_kind, canary.shadow_percent) == (0, StepKind.SHADOW, 25)
    assert step_mode(sim["1.1.0"]) == "shadow"


def test_failing_shadow_analyses_roll_back_before_any_live_weight() -> None:
    sim = _shadowing()
    weights = []
    for _ in range(2):
        sim.analyse(FAILING)
        weights.append(sim["1.1.0"].status.weight)

    canary = sim["1.1.0"].status
    assert sim.state() == {"1.0.0": (Phase.STABLE, 100), "1.1.0": (Phase.ROLLED_BACK, 0)}
    assert weights == [0, 0]
    assert canary.shadow_percent is None  # the service stops shadowing at once
    assert canary.shadow_samples == 100
    assert canary.last_analysis is not None and canary.last_analysis["mode"] == "shadow"
    assert "RolledBack" in sim.reasons("1.1.0")


def test_the_shadow_step_lasts_its_duration_then_live_steps_follow() -> None:
    sim = _shadowing()
    sim.run(HEALTHY, until=119)
    assert sim["1.1.0"].status.step_index == 0

    sim.run(HEALTHY, until=120)

    canary = sim["1.1.0"].status
    assert sim.state() == {"1.0.0": (Phase.STABLE, 80), "1.1.0": (Phase.PROGRESSING, 20)}
    assert (canary.step_index, canary.step_kind, canary.shadow_percent) == (
        1,
        StepKind.CANARY,
        None,
    )
    assert step_mode(sim["1.1.0"]) == "live"
    assert sim.log[-1][3:] == ("StepAdvanced", "step 2: 20%")


def test_an_abort_in_a_shadow_step_stops_the_shadow_traffic() -> None:
    sim = _shadowing()
    sim.request("1.1.0", "abort@1")
    sim.decide()

    assert sim["1.1.0"].status.phase is Phase.ABORTED
    assert sim["1.1.0"].status.shadow_percent is None


@pytest.mark.parametrize(
    ("step", "fields"),
    [
        (SHADOW, {"step_kind": StepKind.SHADOW, "shadow_percent": 25}),
        (RolloutStep(weight=10), {"step_kind": StepKind.CANARY, "shadow_percent": None}),
        (None, {"shadow_percent": None}),
    ],
    ids=["shadow", "weight", "no-step"],
)
def test_decide_step_status(step: RolloutStep | None, fields: dict[str, object]) -> None:
    assert decide_step_status(step) == fields


def test_the_shadow_analysis_leaves_out_what_a_shadow_answer_never_gets() -> None:
    check = MetricCheck(name="x", query="up", min=1)
    analysis = Analysis(
        max_unknown_rate_increase=0.1,
        max_feedback_score_drop=0.1,
        min_judge_score=0.5,
        checks=[check],
    )

    shadow = build_shadow_analysis(analysis)

    assert shadow.max_unknown_rate_increase == 0.1
    assert (shadow.max_feedback_score_drop, shadow.min_judge_score, shadow.checks) == (
        None,
        None,
        [],
    )
    assert analysis.checks == [check]  # the spec's analysis is untouched


def test_shadow_queries_read_the_shadow_families() -> None:
    live = build_queries("faq", "1.1.0", "1m")
    shadow = build_queries("faq", "1.1.0", "1m", "shadow")
    quality = build_quality_queries(
        "faq", "1.1.0", "1m", Analysis(max_unknown_rate_increase=0.1), "shadow"
    )

    assert all("promptrollouts_shadow_" not in q and "mode=" not in q for q in live.values())
    assert all('mode="shadow"' in q for q in shadow.values())
    assert "promptrollouts_shadow_requests_total{" in shadow["requests"]
    assert "promptrollouts_shadow_request_duration_seconds_bucket{" in shadow["p95_ms"]
    assert all("promptrollouts_shadow_requests_total{" in q for q in quality.values())
