"""The verdict on a candidate, and when a run evaluated nothing at all (pure).

assess_servability(version, results) -> str | None   (a setup error: exit 2)
assess_gate(comparison, gate)        -> Verdict       (FAIL: exit 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prompting.evals.comparison import Comparison
from prompting.evals.scoring import CaseResult

__all__ = ["Gate", "Verdict", "assess_gate", "assess_servability"]


def assess_servability(version: str, results: Sequence[CaseResult]) -> str | None:
    """Why `version` could not be evaluated at all, or None when it was.

    A 404 means the service cannot serve the version (unknown or Invalid); a run where
    every request failed evaluated nothing. Either is a setup error, never a verdict.
    """
    runs = [run for result in results for run in result.runs]
    not_found = next((run for run in runs if run.outcome == "HTTP 404"), None)
    if not_found is not None:
        return f"version {version} cannot be served: {not_found.error}"
    if runs and all(run.error is not None for run in runs):
        return (
            f"nothing could be evaluated on version {version}: every request failed "
            f"(first: {runs[0].error})"
        )
    return None


@dataclass(frozen=True)
class Gate:
    """What the candidate must do to pass."""

    #: The candidate must pass at least this fraction of what the baseline passes (weighted).
    min_pass_rate: float = 1.0
    #: A case that passes on the baseline and fails on the candidate fails the run.
    fail_on_regression: bool = True


@dataclass(frozen=True)
class Verdict:
    """PASS or FAIL, and every reason for a FAIL."""

    passed: bool
    reasons: list[str]

    @property
    def exit_code(self) -> int:
        """0 for PASS, 1 for FAIL."""
        return 0 if self.passed else 1


def assess_gate(comparison: Comparison, gate: Gate) -> Verdict:
    """Judge the candidate: regressions, the pass-rate threshold, errors, nothing passed.

    A case the candidate could not answer (an error response) fails the run even when
    the baseline errs too: an error is never a silent pass.
    """
    reasons: list[str] = []
    old, new = comparison.baseline, comparison.candidate
    regressions = comparison.regressions
    if regressions and gate.fail_on_regression:
        ids = ", ".join(c.case_id for c in regressions)
        reasons.append(f"{len(regressions)} regression(s) ({ids})")
    required = gate.min_pass_rate * old.weight_passed
    if new.weight_passed < required - 1e-9:
        unit = " (weighted)" if new.weighted or old.weighted else " case(s)"
        reasons.append(
            f"the candidate passes {new.weight_passed:g}{unit}, fewer than --min-pass-rate "
            f"{gate.min_pass_rate:g} x the baseline's {old.weight_passed:g} = {required:g}"
        )
    errored = [c for c in comparison.cases if c.candidate.error is not None]
    if errored:
        ids = ", ".join(c.case_id for c in errored)
        reasons.append(
            f"{len(errored)} case(s) got no answer from the candidate ({ids}; first: "
            f"{errored[0].candidate.error})"
        )
    if new.passed == 0:
        reasons.append("the candidate passes no case")
    return Verdict(passed=not reasons, reasons=reasons)
