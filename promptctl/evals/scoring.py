"""Scoring: runs into case results, case results into summaries, two versions compared (pure).

Each case runs ``repeat`` times on a version. A run passes when every check holds; a case
passes when at least ``required`` of its runs pass (``--pass-quorum``), so a flaky case
shows its pass fraction instead of hiding behind one lucky run. Pass rates are weighted by
each case's ``weight``.

    score_run(case, response, measured)      -> RunResult
    required_runs(repeat, quorum)            -> int
    summarise(results)                       -> VersionSummary
    compare(baseline, candidate)             -> Comparison   (baseline may lack new cases)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field

from promptctl.evals.evalset import EvalCase
from promptctl.evals.graders import Measured, assess_checks

__all__ = [
    "CaseComparison",
    "CaseResult",
    "CaseStatus",
    "CheckOutcome",
    "Comparison",
    "Deltas",
    "RunResult",
    "VersionSummary",
    "assess_change",
    "compare",
    "required_runs",
    "score_run",
    "summarise",
]


class CheckOutcome(BaseModel):
    """One check in one run."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    score: float | None = None


class RunResult(BaseModel):
    """One answer (or one failed request) and its checks."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    passed: bool
    #: The response's outcome, or `HTTP <status>` for a problem.
    outcome: str
    failures: list[str] = []
    checks: list[CheckOutcome] = []
    answer: str = ""
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    #: Why the request failed (no answer to check), or None when it was answered.
    error: str | None = None


def score_run(case: EvalCase, response: Mapping[str, Any], measured: Measured) -> RunResult:
    """Check one response (an answer, or a problem body with `status`) against the case."""
    if "outcome" not in response:
        status = response.get("status", "?")
        reason = ": ".join(str(response[k]) for k in ("title", "detail") if response.get(k))
        error = f"HTTP {status} {reason}".rstrip()
        return RunResult(
            passed=False,
            outcome=f"HTTP {status}",
            failures=[f"request failed: {error}"],
            error=error,
        )
    checks = assess_checks(case.expect, response, measured)
    failures = [line for check in checks for line in check.failures]
    usage = response.get("usage") or {}
    return RunResult(
        passed=all(check.passed for check in checks),
        outcome=str(response["outcome"]),
        failures=failures,
        checks=[CheckOutcome(name=c.name, passed=c.passed, score=c.score) for c in checks],
        answer=str(response.get("answer", "")),
        latency_ms=response.get("latency_ms"),
        input_tokens=usage.get("input_tokens"),
        output_tokens=usage.get("output_tokens"),
        cost_usd=usage.get("cost_usd"),
    )


def required_runs(repeat: int, quorum: float) -> int:
    """Runs that must pass out of `repeat` for a quorum fraction (at least one)."""
    return max(1, math.ceil(repeat * quorum - 1e-9))


def _mean(values: Sequence[float | int | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


class CaseResult(BaseModel):
    """How one version did on one case, over all its runs."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    case_id: str
    question: str
    weight: float = 1.0
    runs: list[RunResult]
    #: Runs that must pass for the case to pass (the quorum).
    required: int = 1

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed_runs(self) -> int:
        """Runs that passed."""
        return sum(run.passed for run in self.runs)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        """At least `required` runs passed."""
        return self.passed_runs >= self.required

    @property
    def pass_fraction(self) -> float:
        """Passed runs ÷ runs."""
        return self.passed_runs / len(self.runs) if self.runs else 0.0

    @property
    def flaky(self) -> bool:
        """Some runs passed and some failed."""
        return 0 < self.passed_runs < len(self.runs)

    @property
    def failures(self) -> list[str]:
        """Every distinct failure line over the runs, first seen first."""
        return list(dict.fromkeys(line for run in self.runs for line in run.failures))

    @property
    def outcome(self) -> str:
        """The outcome, or each distinct outcome with its count when runs differ."""
        counts: dict[str, int] = {}
        for run in self.runs:
            counts[run.outcome] = counts.get(run.outcome, 0) + 1
        if len(counts) == 1:
            return next(iter(counts))
        return ", ".join(f"{name} x{count}" for name, count in counts.items())

    @property
    def answer(self) -> str:
        """The first run's answer."""
        return self.runs[0].answer if self.runs else ""

    @property
    def error(self) -> str | None:
        """The first request error of a case that did not pass, else None."""
        if self.passed:
            return None
        return next((run.error for run in self.runs if run.error is not None), None)

    @property
    def latency_ms(self) -> float | None:
        """Mean latency of the answered runs."""
        return _mean([run.latency_ms for run in self.runs if run.error is None])

    @property
    def input_tokens(self) -> float | None:
        """Mean input tokens of the answered runs."""
        return _mean([run.input_tokens for run in self.runs if run.error is None])

    @property
    def output_tokens(self) -> float | None:
        """Mean output tokens of the answered runs."""
        return _mean([run.output_tokens for run in self.runs if run.error is None])

    @property
    def cost_usd(self) -> float | None:
        """Mean cost of the answered runs."""
        return _mean([run.cost_usd for run in self.runs if run.error is None])


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
        mean_latency_ms=_mean([r.latency_ms for r in answered]),
        mean_input_tokens=_mean([r.input_tokens for r in answered]),
        mean_output_tokens=_mean([r.output_tokens for r in answered]),
        mean_cost_usd=_mean([r.cost_usd for r in answered]),
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
