"""Which requests a canary shadows, and how its shadow answer compares (pure; the caller
passes the random roll and what it observed).

::

    live answer ──is_shadowable?──no──> nothing (not counted: no shadow step, a pinned
      │yes                                 version, or a request the caller got wrong)
      ├─ X-No-Shadow: true ─────────────> opted_out
      ├─ roll >= percent / 100 ─────────> sampled_out
      ├─ canary model's breaker open ───> breaker_open
      ├─ its rate limit has no room now ─> rate_limited
      ├─ SHADOW_CONCURRENCY running ────> busy
      ├─ maxShadowPerMinute spent ──────> over_budget
      └─ shadow answer in the background ─> done | error | cancelled

Shadowed: requests that chose a version by weight (a pinned version is a test of that
version) and were not refused for their own input (outcome ``invalid``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.answering.outcome import Outcome
from service.answering.result import AnswerResult
from service.catalog.registry import ServedVersion
from service.telemetry.shadow_metrics import ShadowResult

__all__ = [
    "Hurdles",
    "assess_same_citations",
    "build_similarity",
    "decide_shadow",
    "is_shadowable",
]


def is_shadowable(result: AnswerResult, shadow: ServedVersion | None) -> bool:
    """Whether `shadow` may answer `result`'s request in the background (pure)."""
    served = result.served
    if shadow is None or served is None or shadow.version == served.version:
        return False
    if result.request.version is not None:
        return False
    return result.outcome is not Outcome.INVALID


@dataclass(frozen=True)
class Hurdles:
    """What the runner observed for one request, in the order they are checked."""

    opted_out: bool
    roll: float
    percent: int
    breaker_open: bool
    rate_limited: bool
    busy: bool


def decide_shadow(hurdles: Hurdles) -> ShadowResult | None:
    """Why this request is not shadowed, or None: shadow it (if the budget allows)."""
    if hurdles.opted_out:
        return ShadowResult.OPTED_OUT
    if hurdles.roll >= hurdles.percent / 100.0:
        return ShadowResult.SAMPLED_OUT
    if hurdles.breaker_open:
        return ShadowResult.BREAKER_OPEN
    if hurdles.rate_limited:
        return ShadowResult.RATE_LIMITED
    if hurdles.busy:
        return ShadowResult.BUSY
    return None


def assess_same_citations(live: Sequence[str], shadow: Sequence[str]) -> bool:
    """Whether two answers cite the same passages (by id, order and repeats ignored)."""
    return set(live) == set(shadow)


def build_similarity(first: Sequence[float], second: Sequence[float]) -> float | None:
    """Cosine similarity of two embeddings, clamped to [0, 1]; None for a zero vector."""
    dot = sum(a * b for a, b in zip(first, second, strict=True))
    norm = math.sqrt(sum(a * a for a in first)) * math.sqrt(sum(b * b for b in second))
    if norm == 0:
        return None
    return max(0.0, min(1.0, dot / norm))
