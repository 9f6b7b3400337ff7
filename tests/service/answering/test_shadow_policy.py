"""Which requests a canary shadows, how its answer is compared, and which version shadows
(pure tables)."""

from __future__ import annotations

import pytest

from api.v1alpha1 import Phase
from service.answering.shadow_policy import (
    Hurdles,
    assess_same_citations,
    build_similarity,
    decide_shadow,
)
from service.catalog.registry import decide_shadow_percent
from service.telemetry.shadow_metrics import ShadowResult

GO = Hurdles(
    opted_out=False, roll=0.1, percent=25, breaker_open=False, rate_limited=False, busy=False
)


@pytest.mark.parametrize(
    ("changes", "result"),
    [
        ({}, None),
        ({"opted_out": True, "breaker_open": True}, ShadowResult.OPTED_OUT),
        ({"roll": 0.25}, ShadowResult.SAMPLED_OUT),
        ({"roll": 0.2499}, None),
        ({"percent": 100, "roll": 0.9999}, None),
        ({"breaker_open": True, "rate_limited": True}, ShadowResult.BREAKER_OPEN),
        ({"rate_limited": True, "busy": True}, ShadowResult.RATE_LIMITED),
        ({"busy": True}, ShadowResult.BUSY),
    ],
    ids=[
        "go",
        "x-no-shadow-first",
        "outside-percent",
        "inside-percent",
        "100-percent",
        "breaker-before-limit",
        "limit-before-busy",
        "busy",
    ],
)
def test_decide_shadow(changes: dict[str, object], result: ShadowResult | None) -> None:
    hurdles = Hurdles(**{**GO.__dict__, **changes})
    assert decide_shadow(hurdles) is result


@pytest.mark.parametrize(
    ("live", "shadow", "same"),
    [
        (["a", "b"], ["b", "a"], True),
        (["a"], ["a", "a"], True),
        ([], [], True),
        (["a"], [], False),
        (["a"], ["b"], False),
    ],
    ids=["order-ignored", "repeats-ignored", "none-both", "one-missing", "different"],
)
def test_assess_same_citations(live: list[str], shadow: list[str], same: bool) -> None:
    assert assess_same_citations(live, shadow) is same


@pytest.mark.parametrize(
    ("first", "second", "similarity"),
    [
        ([1.0, 0.0], [1.0, 0.0], 1.0),
        ([1.0, 0.0], [0.0, 1.0], 0.0),
        ([1.0, 0.0], [-1.0, 0.0], 0.0),
        ([3.0, 4.0], [4.0, 3.0], 0.96),
        ([0.0, 0.0], [1.0, 0.0], None),
    ],
    ids=["same", "orthogonal", "opposite-clamped", "close", "zero-vector"],
)
def test_build_similarity(
    first: list[float], second: list[float], similarity: float | None
) -> None:
    got = build_similarity(first, second)
    assert got == similarity if similarity is None else got == pytest.approx(similarity)


@pytest.mark.parametrize(
    ("phase", "weight", "percent", "shadowed"),
    [
        (Phase.PROGRESSING, 0, 25, 25),
        (Phase.PAUSED, 0, 25, 25),
        (Phase.PROGRESSING, 20, 25, 0),
        (Phase.ROLLED_BACK, 0, 25, 0),
        (Phase.PROMOTED, 100, 25, 0),
        (Phase.PROGRESSING, 0, None, 0),
    ],
    ids=["progressing", "paused", "live-weight", "rolled-back", "promoted", "no-share"],
)
def test_decide_shadow_percent(
    phase: Phase, weight: int, percent: int | None, shadowed: int
) -> None:
    assert decide_shadow_percent(phase, weight, percent) == shadowed
