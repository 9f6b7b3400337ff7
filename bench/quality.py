"""Measured curves of the quality verdicts: detection time vs effect, false rollbacks vs samples.

Every number comes from :mod:`bench.canary_sim`: synthetic canaries (Poisson traffic,
drifting and wobbling rates) through the real ``assess`` and the state machine's
arithmetic, in simulated (uncompressed) time. Deterministic for a seed.

    python -m bench.quality [--runs N] [--seed S] [--output docs/benchmarks-quality.md]

Prints the report and writes it to ``--output`` (``-`` writes nothing). Exit code 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from api.v1alpha1 import Analysis, Phase, Rollout, RolloutStep
from bench.canary_sim import Outcome, Rates, Traffic, simulate_many

__all__ = ["main", "render_quality_report"]

DEFAULT_STEPS = list(Rollout().steps)
WIDER_STEPS = [RolloutStep(weight=20, pause="1m"), RolloutStep(weight=50, pause="1m")]
STRICT = Analysis(max_unknown_rate_increase=0.0, max_refused_rate_increase=0.0)
EFFECTS = (0.05, 0.10, 0.15, 0.20, 0.30)
BASE = 0.12


def _seconds(outcomes: Sequence[Outcome], phase: Phase) -> list[float]:
    return sorted(o.seconds for o in outcomes if o.phase is phase)


def _share(outcomes: Sequence[Outcome], phase: Phase) -> float:
    return 100.0 * sum(o.phase is phase for o in outcomes) / len(outcomes)


def _quantile(values: Sequence[float], q: float) -> str:
    if not values:
        return "-"
    return f"{values[min(len(values) - 1, int(q * len(values)))]:.0f}"


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.0f}" if values else "-"


def _detection_rows(runs: int, seed: int) -> list[str]:
    rows = []
    for label, steps in (("10 % (default)", DEFAULT_STEPS), ("20 %", WIDER_STEPS)):
        for margin in (0.0, 0.05):
            analysis = Analysis(max_unknown_rate_increase=margin)
            for effect in EFFECTS:
                traffic = Traffic(canary=Rates(unknown=BASE + effect))
                outcomes = simulate_many(analysis, steps, traffic, runs, seed)
                times = _seconds(outcomes, Phase.ROLLED_BACK)
                within = 100.0 * sum(t <= 60 for t in times) / runs
                rows.append(
                    f"| {label} | +{margin * 100:.0f} | +{effect * 100:.0f} pts "
                    f"| {_share(outcomes, Phase.ROLLED_BACK):.1f} "
                    f"| {_median(times)} "
                    f"| {_quantile(times, 0.9)} | {within:.1f} |"
                )
    return rows


def _false_rows(runs: int, seed: int) -> list[str]:
    rows = []
    cases: list[tuple[float, int, float]] = [
        (rps, 50, 0.95) for rps in (5.0, 10.0, 20.0, 50.0, 100.0)
    ]
    cases += [(20.0, samples, 0.95) for samples in (20, 100)]
    cases += [(20.0, 50, confidence) for confidence in (0.9, 0.99)]
    for rps, samples, confidence in cases:
        analysis = STRICT.model_copy(
            update={
                "min_quality_samples": samples,
                "quality_confidence": confidence,
                "min_requests": 5,
            }
        )
        outcomes = simulate_many(analysis, DEFAULT_STEPS, Traffic(rps=rps), runs, seed)
        per_window = rps * 60 * DEFAULT_STEPS[0].live_weight / 100
        rows.append(
            f"| {rps:g} | {per_window:.0f} | {samples} | {confidence:g} "
            f"| {_share(outcomes, Phase.ROLLED_BACK):.2f} "
            f"| {_share(outcomes, Phase.PROMOTED):.1f} "
            f"| {_share(outcomes, Phase.PROGRESSING):.1f} |"
        )
    return rows


def _score_rows(runs: int, seed: int) -> list[str]:
    rows = []
    cases = [
        ("feedback: thumbs down 10 % → 40 %", "maxFeedbackScoreDrop", 0.2,
         Rates(negative=0.40)),
        ("feedback: healthy (10 % down)", "maxFeedbackScoreDrop", 0.2, Rates()),
        ("judge: 0.80 → 0.60", "maxJudgeScoreDrop", 0.1, Rates(judge=0.60)),
        ("judge: healthy (0.80)", "maxJudgeScoreDrop", 0.1, Rates()),
    ]  # fmt: skip
    for label, field, threshold, canary in cases:
        for window in ("1m", "5m"):
            analysis = Analysis.model_validate({field: threshold, "window": window})
            outcomes = simulate_many(analysis, DEFAULT_STEPS, Traffic(canary=canary), runs, seed)
            times = _seconds(outcomes, Phase.ROLLED_BACK)
            rows.append(
                f"| {label} | {field} {threshold:g} | {window} "
                f"| {_share(outcomes, Phase.ROLLED_BACK):.1f} "
                f"| {_share(outcomes, Phase.PROMOTED):.1f} "
                f"| {_share(outcomes, Phase.PROGRESSING):.1f} "
                f"| {_median(times)} |"
            )
    return rows


def render_quality_report(runs: int, seed: int) -> str:
    """docs/benchmarks-quality.md for `runs` rollouts per row (pure, deterministic)."""
    started = time.monotonic()
    detection = _detection_rows(max(1, runs // 5), seed)
    false_rows = _false_rows(runs, seed + 1)
    scores = _score_rows(max(1, runs // 5), seed + 2)
    took = time.monotonic() - started
    defaults = Analysis()
    return "\n".join(
        [
            "# Benchmarks: quality verdicts",
            "",
            "Generated by `python -m bench.quality` (`make bench-quality`); the whole file is",
            f"rewritten by each run. {runs:,} simulated rollouts per false-rollback row,",
            f"{max(1, runs // 5):,} per detection row, seed {seed}; the run took {took:.0f} s.",
            "How the statistics work, and how to choose thresholds: [rollouts.md]"
            "(rollouts.md#quality-checks).",
            "",
            "## Method",
            "",
            "- `bench/canary_sim.py`: Poisson traffic at `rps`, split by the canary's weight;",
            "  every answer is `unknown` at its version's rate (stable 12 %) or `refused`",
            "  (3 %); the rates of both versions drift together by ±30 % of the stable's rate",
            "  over a 5-minute cycle, and wobble per second and version (gamma, CV 0.3).",
            "- Each analysis sees exactly the window's counts (a perfect scrape) and goes",
            "  through the real `controller.analysis.assess`; the verdicts through the state",
            "  machine's arithmetic (steps, pauses, failureLimit), which a test checks against",
            "  `controller.rollout.decide` itself. Time is simulated, not compressed.",
            f"- Defaults: steps {', '.join(f'{s.weight} % for {s.pause}' for s in DEFAULT_STEPS)}"
            f"; interval {defaults.interval}, window {defaults.window}, failureLimit "
            f"{defaults.failure_limit}, minQualitySamples {defaults.min_quality_samples}, "
            f"qualityConfidence {defaults.quality_confidence}.",
            "",
            "## Detection time vs effect size (unknown rate, 20 req/s)",
            "",
            "Stable answers `unknown` 12 % of the time, the canary 12 % + effect. Seconds from",
            "the canary's start to its rollback (the second failed analysis in a row).",
            "",
            "| first step | maxUnknownRateIncrease (pts) | effect | rolled back % | median s "
            "| p90 s | rolled back within 60 s % |",
            "|---|---|---|---|---|---|---|",
            *detection,
            "",
            "## False rollbacks vs sample size (healthy canaries)",
            "",
            "Canary and stable identical; both rate checks on with a margin of 0 (the",
            "strictest setting: any increase at all must be proven). *Answers per window* is",
            "the canary's at its first step. *Undecided*: still Progressing after the steps",
            "plus 5 minutes (too few samples: Inconclusive, by design).",
            "",
            "| req/s | canary answers per window | minQualitySamples | qualityConfidence "
            "| false rollbacks % | promoted % | undecided % |",
            "|---|---|---|---|---|---|---|",
            *false_rows,
            "",
            "## Feedback and judge scores (20 req/s, 30 % of answers rated, 10 % judged)",
            "",
            "A rating is thumbs up (1) or down (0) once normalised; judge scores come in steps",
            "of 0.1. At the 10 % step the canary gets ~36 ratings and ~12 judgements a minute:",
            "fewer than minQualitySamples in a 1m window, so the check stays Inconclusive",
            "and the rollout waits (it never promotes on no evidence) — a longer window or",
            "a higher first step is needed.",
            "",
            "| case | check | window | rolled back % | promoted % | undecided % | median s |",
            "|---|---|---|---|---|---|---|",
            *scores,
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the curves, print them, write them to --output."""
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__)
    parser.add_argument("--runs", type=int, default=1000, help="rollouts per false-rollback row")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--output", default="docs/benchmarks-quality.md", help="'-': none")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    report = render_quality_report(args.runs, args.seed)
    sys.stdout.write(report)
    if args.output != "-":
        Path(args.output).write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
