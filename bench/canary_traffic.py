"""The simulated callers of a canary: rates per version, Poisson traffic, window counts.

Pure and seeded: :func:`build_counts` draws per-second counts (answers, ``unknown``,
``refused``, feedback, judge scores) for both versions from their arrivals, with drift
and wobble as described in :mod:`bench.canary_sim`; :func:`build_measurement` sums a
window of them into what Prometheus would report to :func:`controller.analysis.assess`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from controller.analysis import Measurement, VersionSample
from controller.quality import QualitySample

__all__ = ["FIELDS", "LEVELS", "Rates", "Traffic", "build_counts", "build_measurement"]

#: Per-second counts kept for the window: answers, unknown, refused, feedback count and
#: score sum, judge count and score sum (in tenths), then judge scores per level 0.0..1.0.
LEVELS = 11
FIELDS = 7 + LEVELS


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


def build_measurement(rows: np.ndarray) -> Measurement:
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
                        for level in range(1, LEVELS)
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


def build_counts(
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
    levels = np.zeros((*arrivals.shape, LEVELS), dtype=arrivals.dtype)
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
            pmf = [math.comb(10, k) * mean**k * (1 - mean) ** (10 - k) for k in range(LEVELS)]
            levels[version] = rng.multinomial(judged[version], pmf)
        tenths = levels @ np.arange(LEVELS)
    counts = np.stack([arrivals, unknown, refused, rated, liked, judged, tenths], axis=2)
    return np.concatenate([counts, levels], axis=2)
