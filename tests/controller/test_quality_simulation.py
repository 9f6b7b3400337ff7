"""Acceptance of the quality statistics: simulated canaries through the real assess and decide.

Deterministic (seeded) and pure; see bench/canary_sim.py for the traffic model and
docs/benchmarks-quality.md for the curves. The defaults are the CRD's: 10 % for 1m then
50 % for 1m, analyses every 10 s over a 1m window, failureLimit 2, minQualitySamples and
qualityConfidence as api/v1alpha1/types.py sets them.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import numpy as np

from api.v1alpha1 import Analysis, Phase, PromptVersionStatus, Rollout, RolloutStep
from bench.canary_sim import Rates, Traffic, build_spec, simulate, simulate_many
from controller.analysis import Measurement, VersionSample, assess
from controller.quality import QualitySample
from controller.rollout import Action, ManualRequest, VersionView, decide

STEPS = Rollout().steps
#: The strictest use of the rate checks: any increase at all is a regression to prove.
STRICT = Analysis(max_unknown_rate_increase=0.0, max_refused_rate_increase=0.0)
#: +15 points of unknown answers (12 % → 27 %) at 20 requests a second.
REGRESSION = Traffic(rps=20, canary=Rates(unknown=0.27))


def test_defaults_are_the_ones_measured() -> None:
    analysis = Analysis()
    assert (analysis.min_quality_samples, analysis.quality_confidence) == (50, 0.95)
    assert (analysis.interval, analysis.window, analysis.failure_limit) == ("10s", "1m", 2)
    assert [(s.weight, s.pause) for s in STEPS] == [(10, "1m"), (50, "1m")]


def test_healthy_canaries_are_rarely_rolled_back() -> None:
    outcomes = simulate_many(STRICT, STEPS, Traffic(), runs=1000, seed=11)
    rolled_back = sum(o.phase is Phase.ROLLED_BACK for o in outcomes)
    promoted = sum(o.phase is Phase.PROMOTED for o in outcomes)
    # Not a vacuous pass: the analyses did run and decide (nothing stuck on Inconclusive).
    assert promoted + rolled_back == 1000
    assert rolled_back <= 10, f"{rolled_back / 10:.1f} % false rollbacks"


def test_a_15_point_unknown_regression_is_rolled_back_within_a_minute() -> None:
    analysis = Analysis(max_unknown_rate_increase=0.0)
    at_defaults = simulate_many(analysis, STEPS, REGRESSION, runs=200, seed=12)
    assert all(o.phase is Phase.ROLLED_BACK for o in at_defaults)
    assert statistics.median(o.seconds for o in at_defaults) <= 60
    # The canary sees 2 req/s at the default first step (10 %); at 20 % (4 req/s, the
    # rehearsal's example) 95 % of the regressions are rolled back within 60 s.
    steps = [RolloutStep(weight=20, pause="1m"), RolloutStep(weight=50, pause="1m")]
    wider = simulate_many(analysis, steps, REGRESSION, runs=200, seed=13)
    assert all(o.phase is Phase.ROLLED_BACK for o in wider)
    assert sum(o.seconds <= 60 for o in wider) >= 190
    assert any("unknown rate" in reason for o in wider for reason in o.reasons)


def test_the_fast_replica_decides_like_the_real_state_machine() -> None:
    for traffic, seed in ((Traffic(), 21), (REGRESSION, 22), (Traffic(rps=2), 23)):
        fast = simulate_many(STRICT, STEPS, traffic, runs=25, seed=seed)
        real = simulate_many(STRICT, STEPS, traffic, runs=25, seed=seed, real=True)
        assert fast == real


def test_the_simulation_is_deterministic() -> None:
    first = simulate(STRICT, STEPS, REGRESSION, np.random.default_rng(5))
    again = simulate(STRICT, STEPS, REGRESSION, np.random.default_rng(5))
    assert first == again


def test_too_little_traffic_never_decides() -> None:
    # 3 req/s: at 10 % the canary has ~18 answers in its 1m window, never minQualitySamples.
    analysis = STRICT.model_copy(update={"min_requests": 5})
    outcome = simulate(analysis, STEPS, Traffic(rps=3), np.random.default_rng(3), horizon=600)
    assert (outcome.phase, outcome.seconds) == (Phase.PROGRESSING, 600)
    assert outcome.reasons[0].endswith("answers, fewer than minQualitySamples 50")


def test_a_quality_rollback_says_why_in_one_line() -> None:
    analysis = Analysis(max_unknown_rate_increase=0.05)
    t0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    stable = VersionView(
        "sim-1-0-0", build_spec("1.0.0", analysis, STEPS), PromptVersionStatus(phase="Stable")
    )
    canary = VersionView(
        "sim-1-1-0",
        build_spec("1.1.0", analysis, STEPS),
        PromptVersionStatus(
            phase="Progressing",
            weight=10,
            step_index=0,
            consecutive_failures=1,
            step_started_at="2026-12-03T11:59:00Z",
        ),
    )
    measurement = Measurement(
        canary=VersionSample(requests=412, errors=0, p95_ms=900),
        stable=VersionSample(requests=1930, errors=0, p95_ms=900),
        canary_quality=QualitySample(answers=412, unknown=128),
        stable_quality=QualitySample(answers=1930, unknown=232),
    )
    line = "unknown rate 31 % vs 12 % stable, +19 pts (max +5 pts), p < 0.001, n = 412/1,930"
    changes = {c.name: c for c in decide([stable, canary], assess(analysis, measurement), t0)}
    change = changes["sim-1-1-0"]
    assert change.status.phase is Phase.ROLLED_BACK
    assert change.status.quality == f"Failed: {line}"
    assert change.status.message == f"rolled back: {line}"
    assert ("Warning", "RolledBack", f"rolled back: {line}") in change.events
    assert ("Warning", "AnalysisFailed", f"2/2: {line}") in change.events
    patch = change.status.to_merge_patch()
    assert patch["quality"] == f"Failed: {line}"
    quality = patch["lastAnalysis"]["values"]["quality"]["maxUnknownRateIncrease"]
    assert (quality["canarySamples"], quality["stableSamples"]) == (412, 1930)
    # An analysis Prometheus could not answer leaves the last quality verdict alone.
    after = VersionView(
        canary.name,
        canary.spec,
        canary.status.model_copy(update={"consecutive_failures": 0, "quality": "Passed: x"}),
    )
    error = assess(analysis, Measurement(error="HTTP 503"))
    later = {c.name: c for c in decide([stable, after], error, t0 + timedelta(seconds=10))}
    assert not later["sim-1-1-0"].status.has("quality")


def test_a_retry_clears_the_last_quality_verdict() -> None:
    analysis = Analysis(max_unknown_rate_increase=0.05)
    t0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    stable = VersionView(
        "sim-1-0-0", build_spec("1.0.0", analysis, STEPS), PromptVersionStatus(phase="Stable")
    )
    canary = VersionView(
        "sim-1-1-0",
        build_spec("1.1.0", analysis, STEPS),
        PromptVersionStatus(phase="RolledBack", weight=0, quality="Failed: unknown rate ..."),
        request=ManualRequest(Action.RETRY, "retry@1"),
    )
    (change,) = [c for c in decide([stable, canary], None, t0) if c.name == "sim-1-1-0"]
    assert change.status.phase is Phase.PROGRESSING
    assert change.status.to_merge_patch()["quality"] is None
