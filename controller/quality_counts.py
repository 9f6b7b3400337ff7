"""One version's quality counts as Prometheus returned them, and the signals they give (pure).

Counters that never moved have no series (None: 0); NaN, infinities and negative values
(no data, counter artefacts) count as 0; ``increase()`` extrapolates, so a part may exceed
its whole by a little and is clamped to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.sequential import MeanSample

__all__ = ["BUCKET_COUNTS", "QualitySample", "build_quality_sample"]

#: Counts queried as one value per histogram bucket (``sum by (le)``), not as one sum.
BUCKET_COUNTS = frozenset({"judge_buckets"})


@dataclass(frozen=True)
class QualitySample:
    """One version's quality counts over the window, as queried (None: no series)."""

    answers: float | None = None
    unknown: float | None = None
    refused: float | None = None
    feedback: float | None = None
    feedback_score: float | None = None
    feedback_retracted: float | None = None
    judge_sum: float | None = None
    judge_count: float | None = None
    #: The judge histogram's cumulative bucket counts as (upper bound, count), by bound.
    judge_buckets: tuple[tuple[float, float], ...] | None = None

    def signal(self, field: str) -> MeanSample:
        """The [0, 1] observations `field` (a quality field's snake_case name) compares."""
        if field == "max_unknown_rate_increase":
            return _mean(self.unknown, self.answers)
        if field == "max_refused_rate_increase":
            return _mean(self.refused, self.answers)
        if field in ("min_feedback_score", "max_feedback_score_drop"):
            # A replaced rating withdraws its old score: net = scores - retracted. At the
            # window's edge the withdrawn score may predate the window: clamp to [0, count].
            net = _count(self.feedback_score) - _count(self.feedback_retracted)
            return _mean(net, self.feedback)
        judge = _mean(self.judge_sum, self.judge_count)
        return MeanSample(judge.total, judge.count, _squares(self.judge_buckets, judge.count))


def _squares(buckets: tuple[tuple[float, float], ...] | None, count: float) -> float | None:
    """An upper bound of the sum of squared scores: every score at its bucket's upper bound.

    Scores lie in [0, 1], so the +Inf bucket's bound is 1. The bound is scaled to `count`
    (``_count``), which the buckets' total matches up to increase()'s extrapolation.
    None without usable buckets: the caller then bounds the variance by μ(1 - μ).
    """
    if not buckets or count <= 0:
        return None
    ordered = sorted((min(bound, 1.0), _count(value)) for bound, value in buckets)
    total = max(value for _, value in ordered)
    if total <= 0:
        return None
    squares, below = 0.0, 0.0
    for bound, cumulative in ordered:
        in_bucket = max(cumulative - below, 0.0)
        squares += in_bucket * bound * bound
        below = max(below, cumulative)
    return squares * count / total


def _count(value: float | None) -> float:
    """A queried count: None, NaN, infinities and negatives (no data, artefacts) are 0."""
    return value if value is not None and math.isfinite(value) and value > 0 else 0.0


def _mean(total: float | None, count: float | None) -> MeanSample:
    n = _count(count)
    # Prometheus' increase() extrapolates: the sum may exceed the count by a little.
    return MeanSample(total=min(_count(total), n), count=n)


def build_quality_sample(
    values: Mapping[str, float | Mapping[str, float] | None],
) -> QualitySample:
    """A version's sample from its quality query results (keys of build_quality_queries).

    Bucket counts come as ``{le: count}``; an ``le`` that is not a number is left out.
    """
    counts: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _COUNTS:
            continue
        if key in BUCKET_COUNTS:
            counts[key] = _buckets(value) if isinstance(value, Mapping) else None
        elif not isinstance(value, Mapping):
            counts[key] = value
    return QualitySample(**counts)


def _buckets(by_le: Mapping[str, float]) -> tuple[tuple[float, float], ...] | None:
    parsed = []
    for le, count in by_le.items():
        try:
            bound = float(le)
        except ValueError:
            continue
        if not math.isnan(bound):
            parsed.append((bound, count))
    return tuple(sorted(parsed)) or None


_COUNTS = frozenset(QualitySample.__dataclass_fields__)
