"""Synthetic canaries through the real analysis and state machine (pure, seeded, fast).

One simulated rollout: a stable and a canary PromptVersion of one prompt; traffic
arrives second by second (Poisson, ``rps`` a second), split by the canary's current
weight; every request is an answer that is ``unknown`` or ``refused`` at its version's
rate; a fraction of answers get thumbs up/down feedback and a fraction are judged.
At every analysis the window's counts (exactly what ``sum(increase(...[window]))`` would
return with a perfect scrape) go through the real :func:`controller.analysis.assess`,
and the verdict through the real :func:`controller.rollout.decide`, whose status patches
are applied as the API server would. Time is simulated, not compressed: a 60 s window
holds 60 s of traffic.

Noise on top of the binomial: the rates of both versions drift together (the question
mix over the day: the stable's rate ±``drift`` relative, a 5-minute cycle with a random
phase, added to both versions so a regression keeps its size), and each version's rate
wobbles second to second (users are sticky: a second's callers are not a random draw;
gamma noise with coefficient of variation ``wobble``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from api.v1alpha1 import Analysis, Phase, RolloutStep
from bench.canary_machines import Controller, Replica, build_spec
from bench.canary_traffic import FIELDS, Rates, Traffic, build_counts, build_measurement
from controller.analysis import assess
from controller.durations import parse_duration
from controller.quality import quality_fields

# Rates, Traffic and build_spec are re-exported: callers import them from here.
__all__ = ["Outcome", "Rates", "Traffic", "build_spec", "simulate", "simulate_many"]


@dataclass(frozen=True)
class Outcome:
    """How one simulated rollout ended, and when (seconds after the canary started)."""

    phase: Phase
    seconds: float
    reasons: tuple[str, ...] = ()


def simulate(
    analysis: Analysis,
    steps: Sequence[RolloutStep],
    traffic: Traffic,
    rng: np.random.Generator,
    horizon: float | None = None,
    *,
    real: bool = False,
) -> Outcome:
    """One rollout of a canary over a stable version, until it is promoted or rolled back.

    Without a verdict by `horizon` seconds (default: the steps' pauses plus 5 minutes)
    the outcome is the phase it is in (Progressing: stuck on inconclusive analyses).
    `real` drives :func:`controller.rollout.decide` itself instead of its fast replica.
    """
    interval = parse_duration(analysis.interval)
    window = max(1, round(parse_duration(analysis.window)))
    pauses = sum(parse_duration(s.pause or "0s") for s in steps if s.pause != "manual")
    horizon = horizon if horizon is not None else pauses + 300.0
    controller: Controller | Replica = (
        Controller(analysis, steps) if real else Replica(analysis, steps)
    )
    fields = quality_fields(analysis)
    signals = frozenset(
        kind
        for kind, words in (("rates", "rate"), ("feedback", "feedback"), ("judge", "judge"))
        if any(words in name for name in fields)
    )
    # A Poisson stream split at random is two independent Poisson streams: the traffic of
    # every weight the canary can have is drawn up front, and each second is taken from
    # the weight the controller had set.
    length = math.ceil(horizon) + math.ceil(interval)
    seconds = np.arange(length)
    drift = 1.0 + traffic.drift * np.sin(2 * math.pi * seconds / 300.0 + rng.uniform(0, 6.3))
    by_weight = {}
    for weight in sorted({0, 100, *(step.live_weight for step in steps)}):
        share = np.array([[1.0 - weight / 100.0], [weight / 100.0]])
        arrivals = rng.poisson(traffic.rps * share, (2, length))
        by_weight[weight] = build_counts(rng, arrivals, drift, traffic, signals)
    seen = np.zeros((2, length, FIELDS))
    clock = 0
    reasons: tuple[str, ...] = ()
    while clock < horizon:
        # Traffic until the next tick of the controller, at the weight it set.
        until = clock + max(1, math.ceil(interval))
        seen[:, clock:until] = by_weight[controller.weight][:, clock:until]
        clock = until
        verdict, assessment = None, None
        if controller.due(clock):
            assessment = assess(
                analysis, build_measurement(seen[:, max(0, clock - window) : clock])
            )
            verdict, reasons = assessment.verdict, assessment.reasons
        controller.tick(clock, verdict, assessment)
        if controller.phase in (Phase.PROMOTED, Phase.ROLLED_BACK):
            return Outcome(controller.phase, float(clock), reasons)
    return Outcome(controller.phase, float(clock), reasons)


def simulate_many(
    analysis: Analysis,
    steps: Sequence[RolloutStep],
    traffic: Traffic,
    runs: int,
    seed: int,
    horizon: float | None = None,
    *,
    real: bool = False,
) -> list[Outcome]:
    """`runs` independent rollouts from one seed (deterministic)."""
    rng = np.random.default_rng(seed)
    return [simulate(analysis, steps, traffic, rng, horizon, real=real) for _ in range(runs)]
