"""Quality checks of a canary (pure): the PromQL they need, and each check's verdict and line.

Six optional fields of ``spec.rollout.analysis`` compare what the canary answers with
what the stable version answers over the same window (docs/rollouts.md):

=========================  =====================================  =========================
field                      signal (mean of values in [0, 1])      fails when, with confidence
=========================  =====================================  =========================
maxUnknownRateIncrease     unknown answers / answers              canary - stable > field
maxRefusedRateIncrease     refused answers / answers              canary - stable > field
minFeedbackScore           normalised feedback (score + 1) / 2    canary < field (-1..1)
maxFeedbackScoreDrop       normalised feedback                    stable - canary > field
minJudgeScore              judge score 0..1                       canary < field
maxJudgeScoreDrop          judge score 0..1                       stable - canary > field
=========================  =====================================  =========================

"With confidence" is the always-valid test of :mod:`controller.sequential` at
``qualityConfidence``. A check with fewer than ``minQualitySamples`` observations for a
version it needs is inconclusive: it can neither fail nor pass the analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from api.v1alpha1 import Analysis
from controller.quality_counts import BUCKET_COUNTS, QualitySample, build_quality_sample
from controller.sequential import (
    RATE_TAU,
    SCORE_TAU,
    Comparison,
    MeanSample,
    compare_below,
    compare_decrease,
    compare_increase,
)

__all__ = [
    "ANSWER_OUTCOMES",
    "BUCKET_COUNTS",
    "CheckVerdict",
    "QualityCheck",
    "QualitySample",
    "assess_quality",
    "build_quality_queries",
    "build_quality_sample",
    "quality_fields",
    "render_p_value",
]

#: Outcomes where the version gave an answer: the denominator of the unknown and refused rates.
ANSWER_OUTCOMES = ("answered", "fallback", "unknown", "refused")

#: Which counts each quality field reads.
_NEEDS = {
    "max_unknown_rate_increase": ("answers", "unknown"),
    "max_refused_rate_increase": ("answers", "refused"),
    "min_feedback_score": ("feedback", "feedback_score", "feedback_retracted"),
    "max_feedback_score_drop": ("feedback", "feedback_score", "feedback_retracted"),
    "min_judge_score": ("judge_sum", "judge_count", "judge_buckets"),
    "max_judge_score_drop": ("judge_sum", "judge_count", "judge_buckets"),
}
#: Checks that compare with the stable version (the others read the canary alone).
_RELATIVE = frozenset(
    {
        "max_unknown_rate_increase",
        "max_refused_rate_increase",
        "max_feedback_score_drop",
        "max_judge_score_drop",
    }
)


class CheckVerdict(StrEnum):
    """One quality check's result."""

    PASSED = "Passed"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"


def quality_fields(analysis: Analysis) -> list[str]:
    """The quality fields `analysis` sets (snake_case), in the table's order."""
    return [name for name in _NEEDS if getattr(analysis, name) is not None]


def _selector(prompt: str, version: str) -> str:
    return f'prompt="{prompt}",version="{version}"'


def build_quality_queries(
    prompt: str, version: str, window: str, analysis: Analysis, mode: str = "live"
) -> dict[str, str]:
    """PromQL for the counts the configured quality checks need, for one version.

    `mode` "shadow" counts the version's shadow answers (``promptrollouts_shadow_*``).
    """
    selector = _selector(prompt, version)
    outcome = "promptrollouts_requests_total"
    if mode == "shadow":
        selector, outcome = f'{selector},mode="shadow"', "promptrollouts_shadow_requests_total"
    every = {
        "answers": f'{outcome}{{{selector},outcome=~"{"|".join(ANSWER_OUTCOMES)}"}}',
        "unknown": f'{outcome}{{{selector},outcome="unknown"}}',
        "refused": f'{outcome}{{{selector},outcome="refused"}}',
        "feedback": f"promptrollouts_feedback_total{{{selector}}}",
        "feedback_score": f"promptrollouts_feedback_score_total{{{selector}}}",
        "feedback_retracted": f"promptrollouts_feedback_score_retracted_total{{{selector}}}",
        "judge_sum": f"promptrollouts_judge_score_sum{{{selector}}}",
        "judge_count": f"promptrollouts_judge_score_count{{{selector}}}",
        "judge_buckets": f"promptrollouts_judge_score_bucket{{{selector}}}",
    }
    wanted = {count for name in quality_fields(analysis) for count in _NEEDS[name]}
    return {
        name: f"sum{' by (le)' if name in BUCKET_COUNTS else ''}(increase({series}[{window}]))"
        for name, series in every.items()
        if name in wanted
    }


@dataclass(frozen=True)
class QualityCheck:
    """One quality check's verdict, the numbers behind it, and one line that says why."""

    field: str
    verdict: CheckVerdict
    reason: str
    canary_samples: float
    stable_samples: float | None = None
    canary_value: float | None = None
    stable_value: float | None = None
    effect: float | None = None
    threshold: float | None = None
    p_value: float | None = None

    def to_status(self) -> dict[str, Any]:
        """This check in ``status.lastAnalysis.values.quality`` (camelCase JSON)."""
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "canarySamples": round(self.canary_samples, 3),
            "stableSamples": _round(self.stable_samples, 3),
            "canary": _round(self.canary_value, 6),
            "stable": _round(self.stable_value, 6),
            "effect": _round(self.effect, 6),
            "threshold": self.threshold,
            "pValue": _round(self.p_value, 6),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def assess_quality(
    analysis: Analysis, canary: QualitySample | None, stable: QualitySample | None
) -> tuple[QualityCheck, ...]:
    """Every configured quality check's verdict, in the table's order."""
    return tuple(
        _check(analysis, name, canary or QualitySample(), stable)
        for name in quality_fields(analysis)
    )


#: Per field: the signal's name, whether it is shown as a percentage, its raw scale
#: (feedback is -1..1 on the wire, 0..1 normalised), and the mixture scale.
_SHOWN = {
    "max_unknown_rate_increase": ("unknown rate", True, 1.0, RATE_TAU),
    "max_refused_rate_increase": ("refused rate", True, 1.0, RATE_TAU),
    "min_feedback_score": ("feedback score", False, 2.0, SCORE_TAU),
    "max_feedback_score_drop": ("feedback score", False, 2.0, SCORE_TAU),
    "min_judge_score": ("judge score", False, 1.0, SCORE_TAU),
    "max_judge_score_drop": ("judge score", False, 1.0, SCORE_TAU),
}


def _check(
    analysis: Analysis, field: str, canary: QualitySample, stable: QualitySample | None
) -> QualityCheck:
    label, percent, scale, tau = _SHOWN[field]
    threshold = float(getattr(analysis, field))
    minimum = analysis.min_quality_samples
    ours = canary.signal(field)
    relative = field in _RELATIVE
    theirs = stable.signal(field) if stable is not None and relative else None
    short = _shortfall(label, minimum, ours, theirs, relative and stable is None)
    if short is not None:
        return QualityCheck(
            field,
            CheckVerdict.INCONCLUSIVE,
            short,
            ours.count,
            None if theirs is None else theirs.count,
            threshold=threshold,
        )
    result = _compare(field, ours, theirs, threshold, scale, tau)
    failed = result.rejects(analysis.quality_confidence)
    shown = _value if not percent else _percent
    offset = -1.0 if scale == 2.0 else 0.0  # feedback: normalised 0..1 back to -1..1
    canary_value = ours.mean * scale + offset
    if theirs is not None:
        stable_value = theirs.mean * scale + offset
        change = canary_value - stable_value
        allowed = threshold if field.startswith("max_") and "increase" in field else -threshold
        head = (
            f"{label} {shown(canary_value)} vs {shown(stable_value)} stable, "
            f"{_delta(change, percent)} (max {_allowed(allowed, percent)})"
        )
        counts = f"n = {_n(ours.count)}/{_n(theirs.count)}"
    else:
        stable_value = None
        change = canary_value - threshold
        head = f"{label} {shown(canary_value)} (min {shown(threshold)})"
        counts = f"n = {_n(ours.count)}"
    return QualityCheck(
        field,
        CheckVerdict.FAILED if failed else CheckVerdict.PASSED,
        f"{head}, {render_p_value(result.p_value)}, {counts}",
        ours.count,
        None if theirs is None else theirs.count,
        canary_value,
        stable_value,
        change,
        threshold,
        result.p_value,
    )


def _compare(
    field: str,
    ours: MeanSample,
    theirs: MeanSample | None,
    threshold: float,
    scale: float,
    tau: float,
) -> Comparison:
    if field in ("max_unknown_rate_increase", "max_refused_rate_increase"):
        assert theirs is not None
        return compare_increase(ours, theirs, threshold, tau)
    if theirs is not None:  # a drop of a score, in the score's raw units
        return compare_decrease(ours, theirs, threshold / scale, tau)
    return compare_below(ours, (threshold + 1.0) / 2.0 if scale == 2.0 else threshold, tau)


def _shortfall(
    label: str, minimum: int, ours: MeanSample, theirs: MeanSample | None, no_stable: bool
) -> str | None:
    """Why a check is inconclusive (too few observations, no stable version), or None."""
    what = "answers" if "rate" in label else label.replace(" score", " scores")
    if no_stable:
        return f"{label}: no stable version to compare with"
    short = [
        f"{role} {_n(sample.count)}"
        for role, sample in (("canary", ours), ("stable", theirs))
        if sample is not None and sample.count < minimum
    ]
    if short:
        return f"{label}: {', '.join(short)} {what}, fewer than minQualitySamples {minimum}"
    return None


def render_p_value(p: float) -> str:
    """``p < 0.001``, ``p = 0.012``, ``p = 1``."""
    if p < 0.001:
        return "p < 0.001"
    if p >= 0.9995:
        return "p = 1"
    return f"p = {p:.3f}"


def _n(count: float) -> str:
    return f"{round(count):,}"


def _percent(rate: float) -> str:
    return f"{100 * rate:.0f} %" if rate >= 0.095 or rate == 0 else f"{100 * rate:.1f} %"


def _value(score: float) -> str:
    return f"{score:.2f}"


def _allowed(threshold: float, percent: bool) -> str:
    return f"{100 * threshold:+.3g} pts" if percent else f"{threshold:+.2f}"


def _delta(change: float, percent: bool) -> str:
    if percent:
        points = 100 * change
        return f"{points:+.0f} pts" if abs(points) >= 9.5 or points == 0 else f"{points:+.1f} pts"
    return f"{change:+.2f}"
