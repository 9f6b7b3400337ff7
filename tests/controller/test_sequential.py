"""The always-valid tests on bounded means (controller.sequential), as tables."""

from __future__ import annotations

import math

import pytest

from controller.sequential import (
    MeanSample,
    always_valid_p_value,
    compare_below,
    compare_decrease,
    compare_increase,
)

M = MeanSample

INCREASES = [
    # (id, canary, stable, margin, effect, p-value bounds (low, high))
    ("zero-counts-both", M(0, 0), M(0, 0), 0.0, 0.0, (1.0, 1.0)),
    ("no-unknown-either", M(0, 100), M(0, 1000), 0.0, 0.0, (1.0, 1.0)),
    ("equal-rates", M(12, 100), M(120, 1000), 0.0, 0.0, (1.0, 1.0)),
    ("canary-better", M(5, 100), M(120, 1000), 0.0, -0.07, (1.0, 1.0)),
    ("all-unknown-vs-none", M(100, 100), M(0, 1000), 0.0, 1.0, (0.0, 1e-9)),
    ("all-unknown-both", M(100, 100), M(1000, 1000), 0.0, 0.0, (1.0, 1.0)),
    ("tiny-samples-big-gap", M(3, 5), M(0, 5), 0.0, 0.6, (0.05, 1.0)),
    ("one-in-fifty-vs-none-is-not-evidence", M(1, 50), M(0, 1000), 0.0, 0.02, (0.5, 1.0)),
    ("plus-18-pts-at-100", M(30, 100), M(120, 1000), 0.0, 0.18, (1e-4, 0.01)),
    ("plus-8-pts-at-100-not-enough", M(20, 100), M(120, 1000), 0.0, 0.08, (0.1, 1.0)),
    ("issue-example", M(128, 412), M(232, 1930), 0.05, 0.1905, (0.0, 1e-6)),
    ("within-margin", M(30, 100), M(120, 1000), 0.20, 0.18, (1.0, 1.0)),
    ("sum-above-count-clamped", M(150, 100), M(0, 1000), 0.0, 1.0, (0.0, 1e-9)),
    ("negative-sum-clamped", M(-5, 100), M(0, 1000), 0.0, 0.0, (1.0, 1.0)),
]


@pytest.mark.parametrize(
    ("canary", "stable", "margin", "effect", "bounds"),
    [c[1:] for c in INCREASES],
    ids=[c[0] for c in INCREASES],
)
def test_compare_increase(
    canary: MeanSample,
    stable: MeanSample,
    margin: float,
    effect: float,
    bounds: tuple[float, float],
) -> None:
    result = compare_increase(canary, stable, margin)
    assert result.effect == pytest.approx(effect, abs=1e-4)
    assert result.margin == margin
    low, high = bounds
    assert low <= result.p_value <= high, result


def test_p_value_falls_as_the_evidence_grows() -> None:
    # The same +10 pts, ever more answers: ever smaller p-values.
    p_values = [
        compare_increase(M(0.22 * n, n), M(0.12 * 10 * n, 10 * n), 0.0).p_value
        for n in (50, 100, 200, 400, 800)
    ]
    assert p_values == sorted(p_values, reverse=True)
    assert p_values[0] > 0.05 > p_values[-1]


def test_always_valid_is_stricter_than_a_fixed_sample_z_test() -> None:
    # z = 2.6 is significant at 0.01 for a one-look test, not for one that may look forever.
    variance = 0.01**2
    excess = 2.6 * 0.01
    fixed = 0.5 * math.erfc(2.6 / math.sqrt(2))
    assert fixed < 0.01
    assert always_valid_p_value(excess, variance, 0.1) > 0.01


@pytest.mark.parametrize(
    ("excess", "variance"),
    [(math.nan, 0.01), (0.1, math.nan), (math.inf, 0.01), (0.1, 0.0), (0.1, -1.0), (0.0, 0.01)],
    ids=["nan-excess", "nan-variance", "inf-excess", "zero-variance", "negative-variance", "zero"],
)
def test_degenerate_input_is_no_evidence(excess: float, variance: float) -> None:
    assert always_valid_p_value(excess, variance, 0.1) == 1.0


def test_huge_evidence_does_not_overflow() -> None:
    assert always_valid_p_value(0.9, 1e-9, 0.1) == 0.0


DECREASES = [
    # (id, canary, stable, margin, effect, rejects at 0.95)
    ("equal-scores", M(80, 100), M(800, 1000), 0.1, 0.0, False),
    ("drop-within-margin", M(75, 100), M(800, 1000), 0.1, 0.05, False),
    ("drop-far-beyond", M(30, 100), M(800, 1000), 0.1, 0.5, True),
    ("canary-better", M(95, 100), M(800, 1000), 0.0, -0.15, False),
]


@pytest.mark.parametrize(
    ("canary", "stable", "margin", "effect", "rejects"),
    [c[1:] for c in DECREASES],
    ids=[c[0] for c in DECREASES],
)
def test_compare_decrease(
    canary: MeanSample, stable: MeanSample, margin: float, effect: float, rejects: bool
) -> None:
    result = compare_decrease(canary, stable, margin)
    assert result.effect == pytest.approx(effect)
    assert result.rejects(0.95) is rejects


def test_no_observations_are_no_evidence() -> None:
    assert compare_decrease(M(0, 0), M(800, 1000), 0.0).p_value == 1.0
    assert compare_increase(M(0, 0), M(120, 1000), 0.0).p_value == 1.0
    assert compare_below(M(0, 0), 0.5).p_value == 1.0


BELOW = [
    # (id, canary, bound, effect, rejects at 0.95)
    ("well-above", M(90, 100), 0.7, -0.2, False),
    ("at-the-bound", M(70, 100), 0.7, 0.0, False),
    ("slightly-below-few", M(13, 20), 0.7, 0.05, False),
    ("far-below", M(20, 100), 0.5, 0.3, True),
    ("all-zero", M(0, 100), 0.5, 0.5, True),
]


@pytest.mark.parametrize(
    ("canary", "bound", "effect", "rejects"), [c[1:] for c in BELOW], ids=[c[0] for c in BELOW]
)
def test_compare_below(canary: MeanSample, bound: float, effect: float, rejects: bool) -> None:
    result = compare_below(canary, bound)
    assert result.effect == pytest.approx(effect)
    assert result.rejects(0.95) is rejects


def test_variance_is_never_zero_and_bounded() -> None:
    for sample in (M(0, 10), M(10, 10), M(5, 10), M(0, 0), M(3, 1)):
        assert 0 < sample.variance_of_mean <= 0.25
    assert M(5, 10).variance_of_mean > M(50, 100).variance_of_mean


def test_flipped_turns_a_score_into_its_complement() -> None:
    assert M(30, 100).flipped() == M(70, 100)
    assert M(130, 100).flipped() == M(0, 100)
    assert M(0, 0).flipped().mean == 0.0


def test_a_bound_on_the_squares_shrinks_the_variance() -> None:
    loose = M(80, 100)
    tight = M(80, 100, square_total=64)  # every observation exactly 0.8
    assert 0 < tight.variance_of_mean < loose.variance_of_mean / 5
    # a bound above Σx (impossible in [0, 1]) falls back to the Bernoulli bound
    assert M(80, 100, square_total=500).variance_of_mean == pytest.approx(loose.variance_of_mean)
    # flipping keeps the bound: Σ(1 - x)² = n - 2Σx + Σx²
    assert tight.flipped() == M(20, 100, square_total=100 - 160 + 64)
    assert tight.flipped().variance_of_mean == pytest.approx(tight.variance_of_mean)
