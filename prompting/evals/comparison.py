"""Comparison: each version's summary (weighted pass rate, means, chart data) and the
per-case status between a baseline and a candidate (pure).

    summarise(results)             -> VersionSummary
    compare(baseline, candidate)   -> Comparison   (baseline may lack new cases)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from prompting.evals.scoring import CaseResult, mean

__all__ = [
    "CaseComparison",
    "CaseStatus",
    "Comparison",
    "Deltas",
    "VersionSummary",
    "assess_change",
    "compare",
    "summarise",
]


# --- summaries -------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionSummary:
    """Pass rate (weighted), means over answered runs, and what the charts need."""

    cases: int
    passed: int
    weight: float
    weight_passed: float
    flaky: int
    mean_latency_ms: float | None
    mean_input_tokens: float | None
    mean_output_tokens: float | None
    mean_cost_usd: float | None
    #: Latency of every answered run (for the distribution chart).
    latencies_ms: list[float] = field(default_factory=list)
    #: Cost of every answered run.
    costs_usd: list[float] = field(default_factory=list)
    #: Per check name: [runs where it passed, runs where it was evaluated].
    checks: dict[str, list[int]] = field(default_factory=dict)

    @property
    def pass_rate(self) -> float:
        """Weight of the passed cases ÷ weight of all cases; 0 for no cases."""
        return self.weight_passed / self.weight if self.weight else 0.0

    @property
    def weighted(self) -> bool:
        """Whether some case weighs other than 1 (so the rate differs from the count)."""
        return not math.isclose(self.weight, self.cases)


def summarise(results: Sequence[CaseResult]) -> VersionSummary:
    """The summary of one version's results."""
    answered = [run for result in results for run in result.runs if run.error is None]
    checks: dict[str, list[int]] = {}
    for run in answered:
        for check in run.checks:
            tally = checks.setdefault(check.name, [0, 0])
            tally[0] += check.passed
            tally[1] += 1
    return VersionSummary(
        cases=len(results),
        passed=sum(r.passed for r in results),
        weight=sum(r.weight for r in results),
        weight_passed=sum(r.weight for r in results if r.passed),
        flaky=sum(r.flaky for r in results),
        mean_latency_ms=mean([r.latency_ms for r in answered]),
        mean_input_tokens=mean([r.input_tokens for r in answered]),
        mean_output_tokens=mean([r.output_tokens for r in answered]),
        mean_cost_usd=mean([r.cost_usd for r in answered]),
        latencies_ms=[r.latency_ms for r in answered if r.latency_ms is not None],
        costs_usd=[r.cost_usd for r in answered if r.cost_usd is not None],
        checks=checks,
    )


# --- comparison ------------------------------------------------------------------------


class CaseStatus(StrEnum):
    """What changed for one case between the baseline and the candidate."""

    SAME_PASS = "same-pass"  # noqa: S105 (a status, not a password)
    SAME_FAIL = "same-fail"
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    #: The case has no baseline result (a stored baseline report predates it).
    NEW = "new"


def assess_change(baseline_passed: bool | None, candidate_passed: bool) -> CaseStatus:
    """The status of a case from its two results (None: no baseline result)."""
    if baseline_passed is None:
        return CaseStatus.NEW
    if baseline_passed == candidate_passed:
        return CaseStatus.SAME_PASS if candidate_passed else CaseStatus.SAME_FAIL
    return CaseStatus.IMPROVEMENT if candidate_passed else CaseStatus.REGRESSION


@dataclass(frozen=True)
class CaseComparison:
    """One case on both versions."""

    case_id: str
    status: CaseStatus
    baseline: CaseResult | None
    candidate: CaseResult


def _delta(candidate: float | None, baseline: float | None) -> float | None:
    return None if candidate is None or baseline is None else candidate - baseline


@dataclass(frozen=True)
class Deltas:
    """Candidate minus baseline; None where either version has no value."""

    pass_rate: float
    mean_latency_ms: float | None
    mean_input_tokens: float | None
    mean_output_tokens: float | None
    mean_cost_usd: float | None


@dataclass(frozen=True)
class Comparison:
    """Every case on both versions, each version's summary and the differences."""

    cases: list[CaseComparison]
    baseline: VersionSummary
    candidate: VersionSummary
    deltas: Deltas
    #: Baseline case ids the candidate run does not have (dropped from the eval set).
    removed: list[str] = field(default_factory=list)

    def with_status(self, status: CaseStatus) -> list[CaseComparison]:
        """The cases of one status, in eval-set order."""
        return [case for case in self.cases if case.status is status]

    @property
    def regressions(self) -> list[CaseComparison]:
        """Cases that pass on the baseline and fail on the candidate."""
        return self.with_status(CaseStatus.REGRESSION)


def compare(baseline: Sequence[CaseResult], candidate: Sequence[CaseResult]) -> Comparison:
    """Pair the results by case id, in candidate (eval-set) order, and summarise them."""
    by_id = {result.case_id: result for result in baseline}
    if len(by_id) != len(baseline) or len({r.case_id for r in candidate}) != len(candidate):
        raise ValueError("case ids must be unique")
    cases = []
    for new in candidate:
        old = by_id.get(new.case_id)
        status = assess_change(None if old is None else old.passed, new.passed)
        cases.append(CaseComparison(new.case_id, status, old, new))
    kept = {r.case_id for r in candidate}
    old_summary, new_summary = summarise(baseline), summarise(candidate)
    deltas = Deltas(
        pass_rate=new_summary.pass_rate - old_summary.pass_rate,
        mean_latency_ms=_delta(new_summary.mean_latency_ms, old_summary.mean_latency_ms),
        mean_input_tokens=_delta(new_summary.mean_input_tokens, old_summary.mean_input_tokens),
        mean_output_tokens=_delta(new_summary.mean_output_tokens, old_summary.mean_output_tokens),
        mean_cost_usd=_delta(new_summary.mean_cost_usd, old_summary.mean_cost_usd),
    )
    removed = [r.case_id for r in baseline if r.case_id not in kept]
    return Comparison(cases, old_summary, new_summary, deltas, removed)
