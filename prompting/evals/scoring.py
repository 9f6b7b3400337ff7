"""Scoring: each run's checks into a run result, a case's runs into a case result (pure).

Each case runs ``repeat`` times on a version. A run passes when every check holds; a case
passes when at least ``required`` of its runs pass (``--pass-quorum``), so a flaky case
shows its pass fraction instead of hiding behind one lucky run. Pass rates are weighted by
each case's ``weight``.

    score_run(case, response, measured)      -> RunResult
    required_runs(repeat, quorum)            -> int
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field

from prompting.evals.evalset import EvalCase
from prompting.evals.graders import Measured, assess_checks

__all__ = ["CaseResult", "CheckOutcome", "RunResult", "mean", "required_runs", "score_run"]


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


def mean(values: Sequence[float | int | None]) -> float | None:
    """The mean of the values present, None when there are none."""
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
        return mean([run.latency_ms for run in self.runs if run.error is None])

    @property
    def input_tokens(self) -> float | None:
        """Mean input tokens of the answered runs."""
        return mean([run.input_tokens for run in self.runs if run.error is None])

    @property
    def output_tokens(self) -> float | None:
        """Mean output tokens of the answered runs."""
        return mean([run.output_tokens for run in self.runs if run.error is None])

    @property
    def cost_usd(self) -> float | None:
        """Mean cost of the answered runs."""
        return mean([run.cost_usd for run in self.runs if run.error is None])
