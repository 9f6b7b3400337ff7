"""Always-valid tests on bounded means (pure): is the canary worse than the stable version?

Every quality signal the controller compares is the mean of observations in [0, 1]:
a rate (an answer is ``unknown`` or not: 0/1) or a normalised score (feedback mapped to
[0, 1], judge scores 0..1). Prometheus gives each as a **sum and a count**, never the
sum of squares, so the variance is bounded instead of estimated: for any variable in
[0, 1], ``Var(X) = E[X²] - μ² <= μ - μ² = μ(1 - μ)`` (equality for 0/1 outcomes).

The test is a one-sided **mixture sequential probability ratio test** (mSPRT; Robbins
1970, Johari et al. 2017 "Always valid inference"). For an observed worsening ``d`` with
variance ``V`` and an allowed worsening ``margin``, the likelihood ratio of "worse by more
than the margin" against "exactly the margin", mixed over a half-normal prior of scale
``tau`` on the excess, is::

    Λ = 2 · sqrt(V / (V + τ²)) · exp(x² τ² / (2 V (V + τ²))) · Φ(x τ / sqrt(V (V + τ²)))

with ``x = d - margin``. Under the null hypothesis (worsening <= margin) Λ is a
non-negative supermartingale, so ``P(Λ ever reaches 1/alpha) <= alpha`` however often one looks:
``p = min(1, 1/Λ)`` is an always-valid p-value. It is far stricter than a fixed-sample
z-test at the same alpha (|z| ≈ 3.4 at alpha = 0.01 instead of 2.33), the price of looking every
few seconds.

Assumptions (docs/rollouts.md):

* observations are independent given the version (requests of one user are not grouped);
* the normal approximation of the mean holds (the caller asks for a minimum sample; the
  variance uses a shrunk mean ``(sum + 1) / (count + 2)``, so 0/n or n/n never gives a
  zero variance);
* canary and stable are measured over the same window, so a change of the question mix
  over time moves both alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "RATE_TAU",
    "SCORE_TAU",
    "Comparison",
    "MeanSample",
    "always_valid_p_value",
    "compare_below",
    "compare_decrease",
    "compare_increase",
]

#: Mixture scale for rates: the test is most sensitive to changes of about 10 points.
RATE_TAU = 0.1
#: Mixture scale for normalised scores (feedback, judge).
SCORE_TAU = 0.1


@dataclass(frozen=True)
class MeanSample:
    """Observations in [0, 1] summarised as their sum and count (Prometheus' view)."""

    total: float
    count: float
    #: An upper bound of the sum of squares, when known (e.g. from histogram buckets).
    square_total: float | None = None

    @property
    def mean(self) -> float:
        """The observed mean, clamped to [0, 1] (0.0 without observations)."""
        if self.count <= 0:
            return 0.0
        return min(1.0, max(0.0, self.total / self.count))

    @property
    def variance_of_mean(self) -> float:
        """An upper bound of the mean's variance, over n.

        Without squares: μ̃(1 - μ̃) with a shrunk μ̃ = (sum + 1) / (n + 2). With a bound of
        the sum of squares the smaller of that and E[X²] - μ², both computed with one
        pseudo-observation at 0 and one at 1, so the variance is never zero.
        """
        count = max(self.count, 1.0)
        total = min(max(self.total, 0.0), count)
        shrunk = (total + 1.0) / (count + 2.0)
        bound = shrunk * (1.0 - shrunk)
        if self.square_total is not None and math.isfinite(self.square_total):
            squares = min(max(self.square_total, total * total / count), total)
            bound = min(bound, (squares + 1.0) / (count + 2.0) - shrunk * shrunk)
        return bound / count

    def flipped(self) -> MeanSample:
        """The sample of ``1 - X``: turns "lower is worse" into "higher is worse"."""
        count = max(self.count, 0.0)
        total = min(max(self.total, 0.0), count)
        squares = None
        if self.square_total is not None:  # Σ(1 - x)² = n - 2Σx + Σx²
            squares = count - 2.0 * total + self.square_total
        return MeanSample(total=count - total, count=count, square_total=squares)


@dataclass(frozen=True)
class Comparison:
    """One test's result: how much worse the canary looks, and how sure that is."""

    #: Observed worsening, in the mean's units (canary - stable for a rate increase).
    effect: float
    #: Allowed worsening (the threshold): the null hypothesis is effect <= margin.
    margin: float
    #: Always-valid p-value of the null hypothesis.
    p_value: float

    def rejects(self, confidence: float) -> bool:
        """Whether the canary is worse than allowed with at least `confidence`."""
        return self.p_value <= 1.0 - confidence


def always_valid_p_value(excess: float, variance: float, tau: float) -> float:
    """The one-sided mSPRT p-value of "true excess <= 0" given an observed `excess`.

    `variance` is the variance of the observed excess (> 0); `tau` the mixture scale.
    Returns 1.0 for a non-positive excess and for non-finite input.
    """
    if not (math.isfinite(excess) and math.isfinite(variance)) or variance <= 0 or excess <= 0:
        return 1.0
    t2 = tau * tau
    log_lr = (
        math.log(2.0)
        - 0.5 * math.log1p(t2 / variance)
        + excess * excess * t2 / (2.0 * variance * (variance + t2))
        + math.log(0.5 * math.erfc(-excess * tau / math.sqrt(2.0 * variance * (variance + t2))))
    )
    return 1.0 if log_lr <= 0 else math.exp(-log_lr)


def compare_increase(
    canary: MeanSample, stable: MeanSample, margin: float, tau: float = RATE_TAU
) -> Comparison:
    """Test "canary mean - stable mean <= margin" (e.g. the unknown rate rose by at most 5 pts)."""
    effect = canary.mean - stable.mean
    if canary.count <= 0 or stable.count <= 0:
        return Comparison(effect, margin, 1.0)
    variance = canary.variance_of_mean + stable.variance_of_mean
    return Comparison(effect, margin, always_valid_p_value(effect - margin, variance, tau))


def compare_decrease(
    canary: MeanSample, stable: MeanSample, margin: float, tau: float = SCORE_TAU
) -> Comparison:
    """Test "stable mean - canary mean <= margin" (e.g. the judge score fell by at most 0.1)."""
    return compare_increase(canary.flipped(), stable.flipped(), margin, tau)


def compare_below(canary: MeanSample, bound: float, tau: float = SCORE_TAU) -> Comparison:
    """Test "canary mean >= bound"; the effect is how far the mean is below the bound."""
    effect = bound - canary.mean
    if canary.count <= 0:
        return Comparison(effect, 0.0, 1.0)
    return Comparison(effect, 0.0, always_valid_p_value(effect, canary.variance_of_mean, tau))
