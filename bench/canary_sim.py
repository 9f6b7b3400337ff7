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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from api.v1alpha1 import Analysis, Phase, PromptVersionSpec, PromptVersionStatus, RolloutStep
from controller.analysis import Measurement, Verdict, VersionSample, assess
from controller.durations import parse_duration
from controller.quality import QualitySample, quality_fields
from controller.rollout import Change, VersionView, decide, decide_analysis

__all__ = ["Outcome", "Rates", "Traffic", "build_spec", "simulate", "simulate_many"]

_T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: Per-second counts kept for the window: answers, unknown, refused, feedback count and
#: score sum, judge count and score sum (in tenths), then judge scores per level 0.0..1.0.
_LEVELS = 11
_FIELDS = 7 + _LEVELS


@dataclass(frozen=True)
class Rates:
    """What one version does: answer rates and what users and the judge think of it."""

    unknown: float = 0.12
    refused: float = 0.03
    #: Probability that a rating is thumbs down (0), else thumbs up (1).
    negative: float = 0.10
    #: Mean judge score; scores come in steps of 0.1 (binomial(10, mean) / 10).
    judge: float = 0.80


@dataclass(frozen=True)
class Traffic:
    """The simulated callers."""

    rps: float = 20.0
    stable: Rates = field(default_factory=Rates)
    canary: Rates = field(default_factory=Rates)
    #: Fraction of answers rated by their user; fraction judged.
    feedback_rate: float = 0.3
    judge_rate: float = 0.1
    drift: float = 0.3
    wobble: float = 0.3


@dataclass(frozen=True)
class Outcome:
    """How one simulated rollout ended, and when (seconds after the canary started)."""

    phase: Phase
    seconds: float
    reasons: tuple[str, ...] = ()


def build_spec(version: str, analysis: Analysis, steps: Sequence[RolloutStep]) -> PromptVersionSpec:
    """The spec of version `version` of the simulated prompt ``sim``."""
    return PromptVersionSpec.model_validate(
        {
            "prompt": "sim",
            "version": version,
            "owner": "bench",
            "template": {"system": "s", "user": "{{ question }}"},
            "model": {"name": "m"},
            "rollout": {
                "steps": [s.model_dump(by_alias=True) for s in steps],
                "analysis": analysis.model_dump(by_alias=True, exclude_none=True),
            },
        }
    )


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a status merge patch."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _apply(views: list[VersionView], changes: Sequence[Change]) -> list[VersionView]:
    by_name = {change.name: change for change in changes}
    result = []
    for view in views:
        change = by_name.get(view.name)
        if change is None:
            result.append(view)
            continue
        current = view.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        merged = _merge(current, change.status.to_merge_patch())
        result.append(VersionView(view.name, view.spec, PromptVersionStatus.model_validate(merged)))
    return result


def _measurement(rows: np.ndarray) -> Measurement:
    """What Prometheus would report over a window: `rows` (2, seconds, fields) summed."""
    samples, qualities = [], []
    for row in rows.sum(axis=1).tolist():
        answers = row[0]
        samples.append(
            VersionSample(requests=answers, errors=0.0, p95_ms=250.0 if answers else None)
        )
        qualities.append(
            QualitySample(
                answers=answers,
                unknown=row[1],
                refused=row[2],
                feedback=row[3],
                feedback_score=row[4],
                feedback_retracted=0.0,
                judge_count=row[5],
                judge_sum=row[6] / 10.0,
                # the histogram's buckets 0.1, 0.2, ..., 1.0 (+Inf): level k is in le=k/10
                judge_buckets=(
                    *(
                        (level / 10.0, float(sum(row[7 : 7 + level + 1])))
                        for level in range(1, _LEVELS)
                    ),
                    (math.inf, row[5]),
                ),
            )
        )
    return Measurement(
        canary=samples[1],
        stable=samples[0],
        canary_quality=qualities[1],
        stable_quality=qualities[0],
    )


def _traffic(
    rng: np.random.Generator,
    arrivals: np.ndarray,
    drift: np.ndarray,
    traffic: Traffic,
    signals: frozenset[str],
) -> np.ndarray:
    """Per-second counts shaped (2, seconds, fields) given arrivals shaped (2, seconds).

    Only the `signals` an analysis reads ("rates", "feedback", "judge") are drawn.
    """
    rates = np.array(
        [[r.unknown, r.refused, r.negative, r.judge] for r in (traffic.stable, traffic.canary)]
    )[:, :, None]
    shape = 1.0 / traffic.wobble**2 if traffic.wobble > 0 else 0.0
    noise = (
        rng.gamma(shape, 1.0 / shape, (2, 2, arrivals.shape[1]))
        if shape
        else np.ones((2, 2, arrivals.shape[1]))
    )
    # The drift moves both versions by the same points (the stable's rate times the
    # drift), so a canary's regression keeps its size; the wobble is per version.
    base = rates[0, :2] * (drift - 1.0)
    unknown_p = np.clip((rates[:, 0] + base[0]) * noise[:, 0], 0.0, 1.0)
    refused_p = np.clip((rates[:, 1] + base[1]) * noise[:, 1], 0.0, 1.0 - unknown_p)
    none = np.zeros_like(arrivals)
    unknown = refused = rated = liked = judged = tenths = none
    levels = np.zeros((*arrivals.shape, _LEVELS), dtype=arrivals.dtype)
    if "rates" in signals:
        unknown = rng.binomial(arrivals, unknown_p)
        rest = np.where(unknown_p < 1, refused_p / np.maximum(1 - unknown_p, 1e-12), 0.0)
        refused = rng.binomial(arrivals - unknown, rest)
    if "feedback" in signals:
        rated = rng.binomial(arrivals, traffic.feedback_rate)
        liked = rng.binomial(rated, 1.0 - rates[:, 2])
    if "judge" in signals:
        judged = rng.binomial(arrivals, traffic.judge_rate)
        for version in range(2):  # a score is binomial(10, mean) / 10: one level per tenth
            mean = float(rates[version, 3, 0])
            pmf = [math.comb(10, k) * mean**k * (1 - mean) ** (10 - k) for k in range(_LEVELS)]
            levels[version] = rng.multinomial(judged[version], pmf)
        tenths = levels @ np.arange(_LEVELS)
    counts = np.stack([arrivals, unknown, refused, rated, liked, judged, tenths], axis=2)
    return np.concatenate([counts, levels], axis=2)


class _Controller:
    """The real state machine: views, :func:`decide_analysis`, :func:`decide`, merge patches."""

    def __init__(self, analysis: Analysis, steps: Sequence[RolloutStep]) -> None:
        stable = VersionView(
            "sim-1-0-0",
            build_spec("1.0.0", analysis, steps),
            PromptVersionStatus(phase=Phase.STABLE, weight=100),
        )
        canary = VersionView(
            "sim-1-1-0", build_spec("1.1.0", analysis, steps), PromptVersionStatus()
        )
        self.views = _apply([stable, canary], decide([stable, canary], None, _T0))

    @property
    def weight(self) -> int:
        return self.views[1].status.weight or 0

    @property
    def phase(self) -> Phase:
        return self.views[1].phase

    def due(self, clock: float) -> bool:
        return decide_analysis(self.views, _T0 + timedelta(seconds=clock)) is not None

    def tick(self, clock: float, verdict: Verdict | None, assessment: Any) -> None:
        now = _T0 + timedelta(seconds=clock)
        self.views = _apply(self.views, decide(self.views, assessment, now))


class _Replica:
    """The state machine's arithmetic alone (steps, pauses, failureLimit), ~100x faster.

    It is what :func:`controller.rollout.decide` does for a Progressing canary whose
    analyses are never Error and that nobody pauses; ``tests/controller`` checks that both
    give the same outcomes for the same traffic.
    """

    def __init__(self, analysis: Analysis, steps: Sequence[RolloutStep]) -> None:
        self.steps = list(steps)
        self.interval = parse_duration(analysis.interval)
        self.limit = analysis.failure_limit
        self.index = 0
        self.started = 0.0
        self.last = 0.0
        self.failures = 0
        self.phase = Phase.PROGRESSING

    @property
    def weight(self) -> int:
        if self.phase is Phase.ROLLED_BACK:
            return 0
        return 100 if self.phase is Phase.PROMOTED else self.steps[self.index].weight

    def due(self, clock: float) -> bool:
        return clock - max(self.last, self.started) >= self.interval

    def tick(self, clock: float, verdict: Verdict | None, assessment: Any) -> None:
        if verdict is None:
            return
        self.last = clock
        if verdict is Verdict.FAILED:
            self.failures += 1
            if self.failures >= self.limit:
                self.phase = Phase.ROLLED_BACK
        elif verdict is Verdict.SUCCESSFUL:
            self.failures = 0
            pause = self.steps[self.index].pause
            if pause != "manual" and clock - self.started >= parse_duration(pause or "0s"):
                self.index += 1
                self.started = clock
                if self.index >= len(self.steps):
                    self.phase = Phase.PROMOTED


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
    controller: _Controller | _Replica = (
        _Controller(analysis, steps) if real else _Replica(analysis, steps)
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
    for weight in sorted({0, 100, *(step.weight for step in steps)}):
        share = np.array([[1.0 - weight / 100.0], [weight / 100.0]])
        arrivals = rng.poisson(traffic.rps * share, (2, length))
        by_weight[weight] = _traffic(rng, arrivals, drift, traffic, signals)
    seen = np.zeros((2, length, _FIELDS))
    clock = 0
    reasons: tuple[str, ...] = ()
    while clock < horizon:
        # Traffic until the next tick of the controller, at the weight it set.
        until = clock + max(1, math.ceil(interval))
        seen[:, clock:until] = by_weight[controller.weight][:, clock:until]
        clock = until
        verdict, assessment = None, None
        if controller.due(clock):
            assessment = assess(analysis, _measurement(seen[:, max(0, clock - window) : clock]))
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
