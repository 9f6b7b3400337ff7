"""Eval sets, scoring and version comparison: offline regression tests for prompts (pure).

An eval set (YAML, see ``docs/evals.md``) names one prompt and its cases. Each case asks
one question and lists robust checks on the answer (outcome, cited sources, key phrases,
forbidden phrases, latency) rather than a word-for-word expected answer. The same cases
run against a baseline and a candidate version; a case that passes on the baseline and
fails on the candidate is a regression.

    parse_evalset(text)           -> EvalSet          (or EvalSetError)
    score_case(case, response)    -> CaseResult       (one API response or problem body)
    compare(baseline, candidate)  -> Comparison       (per-case status, summaries, deltas)
    render_report(comparison, meta) -> str            (Markdown)

Errors::

    ValueError
    └── EvalSetError     the text is not a valid eval set; ``problems`` names case and field
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from api.v1alpha1 import DNS_LABEL_PATTERN

__all__ = [
    "CaseComparison",
    "CaseResult",
    "CaseStatus",
    "Comparison",
    "Deltas",
    "EvalCase",
    "EvalSet",
    "EvalSetError",
    "Expectation",
    "Gate",
    "ReportMeta",
    "Verdict",
    "VersionSummary",
    "assess_change",
    "assess_gate",
    "assess_servability",
    "compare",
    "parse_evalset",
    "render_report",
    "render_verdict",
    "score_case",
    "summarise",
]

ExpectedOutcome = Literal["answered", "fallback", "unknown", "refused"]
Scalar = str | int | float | bool | None


class Expectation(BaseModel):
    """The checks one answer must pass; every one that is set must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: list[ExpectedOutcome] | None = Field(
        default=None, min_length=1, description="The outcome, or a list of acceptable ones."
    )
    sources_any: list[str] | None = Field(
        default=None, min_length=1, description="At least one of these files is cited."
    )
    contains_any: list[str] | None = Field(
        default=None, min_length=1, description="At least one phrase is in the answer (any case)."
    )
    not_contains: list[str] | None = Field(
        default=None, min_length=1, description="No phrase is in the answer (any case)."
    )
    max_latency_ms: float | None = Field(default=None, gt=0)

    @field_validator("outcome", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("sources_any", "contains_any", "not_contains")
    @classmethod
    def _no_blank_entries(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not entry.strip() for entry in value):
            raise ValueError("entries must not be blank")
        return value

    @model_validator(mode="after")
    def _checks_something(self) -> Self:
        if all(value is None for value in self.model_dump().values()):
            raise ValueError(
                "give at least one check: outcome, sources_any, contains_any, "
                "not_contains or max_latency_ms"
            )
        return self


class EvalCase(BaseModel):
    """One question and what its answer must satisfy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Ids land in Markdown tables: no spaces, no pipes.
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    question: str = Field(min_length=1, max_length=4000)
    variables: dict[str, Scalar] = Field(default_factory=dict)
    user: str | None = Field(default=None, max_length=256)
    expect: Expectation


class EvalSet(BaseModel):
    """A prompt and the cases its versions are judged on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63)
    cases: list[EvalCase] = Field(min_length=1)

    @field_validator("cases")
    @classmethod
    def _unique_ids(cls, cases: list[EvalCase]) -> list[EvalCase]:
        seen: set[str] = set()
        for case in cases:
            if case.id in seen:
                raise ValueError(f"duplicate case id {case.id!r}")
            seen.add(case.id)
        return cases


class EvalSetError(ValueError):
    """The text is not a valid eval set; `problems` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_evalset(text: str) -> EvalSet:
    """The eval set in a YAML text; problems name the case by its id and the field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise EvalSetError([f"not valid YAML: {error}"]) from error
    if not isinstance(data, dict):
        raise EvalSetError(["the file must be a mapping with `prompt` and `cases`"])
    try:
        return EvalSet.model_validate(data)
    except ValidationError as error:
        raise EvalSetError([_describe(e, data) for e in error.errors()]) from error


def _describe(error: Any, data: Mapping[str, Any]) -> str:
    """`case 'refund-window' expect.outcome[0]: Input should be ...` for one pydantic error."""
    loc: tuple[int | str, ...] = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    where = ""
    if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int):
        where = _case_name(data.get("cases"), loc[1])
        loc = loc[2:]
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    head = " ".join(p for p in (where, path) if p)
    return f"{head}: {message}" if head else message


def _case_name(cases: object, index: int) -> str:
    raw = cases[index] if isinstance(cases, list) and index < len(cases) else None
    case_id = raw.get("id") if isinstance(raw, dict) else None
    return f"case {case_id!r}" if isinstance(case_id, str) else f"case #{index + 1}"


# --- scoring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """How one version did on one case."""

    case_id: str
    question: str
    passed: bool
    failures: list[str]
    #: The response's outcome, or `HTTP <status>` for a problem.
    outcome: str
    answer: str = ""
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    #: Why the request failed (no answer to check), or None when it was answered.
    error: str | None = None


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _check(expect: Expectation, response: Mapping[str, Any]) -> list[str]:
    failures: list[str] = []
    outcome = str(response.get("outcome"))
    answer = _fold(str(response.get("answer", "")))
    if expect.outcome is not None and outcome not in expect.outcome:
        failures.append(f"outcome: got {outcome}, expected {' or '.join(expect.outcome)}")
    if expect.sources_any is not None:
        cited = [str(c.get("source")) for c in response.get("citations", [])]
        if not set(expect.sources_any) & set(cited):
            got = ", ".join(dict.fromkeys(cited)) or "nothing"
            failures.append(
                f"sources_any: cited {got}, expected one of {', '.join(expect.sources_any)}"
            )
    if expect.contains_any is not None and not any(
        _fold(phrase) in answer for phrase in expect.contains_any
    ):
        phrases = ", ".join(repr(p) for p in expect.contains_any)
        failures.append(f"contains_any: the answer has none of {phrases}")
    for phrase in expect.not_contains or []:
        if _fold(phrase) in answer:
            failures.append(f"not_contains: the answer has {phrase!r}")
    latency = response.get("latency_ms")
    if expect.max_latency_ms is not None and (
        not isinstance(latency, int | float) or latency > expect.max_latency_ms
    ):
        failures.append(f"max_latency_ms: took {latency} ms, limit {expect.max_latency_ms:g} ms")
    return failures


def score_case(case: EvalCase, response: Mapping[str, Any]) -> CaseResult:
    """Check one response (an answer, or a problem body with `status`) against the case."""
    if "outcome" not in response:
        status = response.get("status", "?")
        reason = ": ".join(str(response[k]) for k in ("title", "detail") if response.get(k))
        error = f"HTTP {status} {reason}".rstrip()
        return CaseResult(
            case_id=case.id,
            question=case.question,
            passed=False,
            failures=[f"request failed: {error}"],
            outcome=f"HTTP {status}",
            error=error,
        )
    failures = _check(case.expect, response)
    usage = response.get("usage") or {}
    return CaseResult(
        case_id=case.id,
        question=case.question,
        passed=not failures,
        failures=failures,
        outcome=str(response["outcome"]),
        answer=str(response.get("answer", "")),
        latency_ms=response.get("latency_ms"),
        input_tokens=usage.get("input_tokens"),
        output_tokens=usage.get("output_tokens"),
        cost_usd=usage.get("cost_usd"),
    )


# --- comparison ------------------------------------------------------------------------


class CaseStatus(StrEnum):
    """What changed for one case between the baseline and the candidate."""

    SAME_PASS = "same-pass"  # noqa: S105 (a status, not a password)
    SAME_FAIL = "same-fail"
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"


def assess_change(baseline_passed: bool, candidate_passed: bool) -> CaseStatus:
    """The status of a case from its two results."""
    if baseline_passed == candidate_passed:
        return CaseStatus.SAME_PASS if candidate_passed else CaseStatus.SAME_FAIL
    return CaseStatus.IMPROVEMENT if candidate_passed else CaseStatus.REGRESSION


@dataclass(frozen=True)
class CaseComparison:
    """One case on both versions."""

    case_id: str
    status: CaseStatus
    baseline: CaseResult
    candidate: CaseResult


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


@dataclass(frozen=True)
class VersionSummary:
    """Pass rate and mean cost of one version; means skip failed requests."""

    cases: int
    passed: int
    mean_latency_ms: float | None
    mean_input_tokens: float | None
    mean_output_tokens: float | None
    mean_cost_usd: float | None

    @property
    def pass_rate(self) -> float:
        """Passed ÷ cases, 0 for no cases."""
        return self.passed / self.cases if self.cases else 0.0


def summarise(results: Sequence[CaseResult]) -> VersionSummary:
    """The summary of one version's results."""
    return VersionSummary(
        cases=len(results),
        passed=sum(r.passed for r in results),
        mean_latency_ms=_mean([r.latency_ms for r in results]),
        mean_input_tokens=_mean([r.input_tokens for r in results]),
        mean_output_tokens=_mean([r.output_tokens for r in results]),
        mean_cost_usd=_mean([r.cost_usd for r in results]),
    )


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

    def with_status(self, status: CaseStatus) -> list[CaseComparison]:
        """The cases of one status, in eval-set order."""
        return [case for case in self.cases if case.status is status]

    @property
    def regressions(self) -> list[CaseComparison]:
        """Cases that pass on the baseline and fail on the candidate."""
        return self.with_status(CaseStatus.REGRESSION)


def compare(baseline: Sequence[CaseResult], candidate: Sequence[CaseResult]) -> Comparison:
    """Pair the two versions' results by case id (baseline order) and summarise them."""
    by_id = {result.case_id: result for result in candidate}
    if sorted(by_id) != sorted(r.case_id for r in baseline) or len(by_id) != len(candidate):
        raise ValueError("baseline and candidate results must cover the same case ids")
    cases = [
        CaseComparison(
            b.case_id, assess_change(b.passed, by_id[b.case_id].passed), b, by_id[b.case_id]
        )
        for b in baseline
    ]
    old, new = summarise(baseline), summarise(candidate)
    deltas = Deltas(
        pass_rate=new.pass_rate - old.pass_rate,
        mean_latency_ms=_delta(new.mean_latency_ms, old.mean_latency_ms),
        mean_input_tokens=_delta(new.mean_input_tokens, old.mean_input_tokens),
        mean_output_tokens=_delta(new.mean_output_tokens, old.mean_output_tokens),
        mean_cost_usd=_delta(new.mean_cost_usd, old.mean_cost_usd),
    )
    return Comparison(cases, old, new, deltas)


# --- gates ---------------------------------------------------------------------------


def assess_servability(version: str, results: Sequence[CaseResult]) -> str | None:
    """Why `version` could not be evaluated at all, or None when it was.

    A 404 means the service cannot serve the version (unknown or Invalid); a run where
    every request failed evaluated nothing. Either is a setup error, never a verdict.
    """
    not_found = next((r for r in results if r.outcome == "HTTP 404"), None)
    if not_found is not None:
        return f"version {version} cannot be served: {not_found.error}"
    if results and all(r.error is not None for r in results):
        return (
            f"nothing could be evaluated on version {version}: every request failed "
            f"(first: {results[0].error})"
        )
    return None


@dataclass(frozen=True)
class Gate:
    """What the candidate must do to pass."""

    #: The candidate must pass at least this fraction of the cases the baseline passes.
    min_pass_rate: float = 1.0
    #: A case that passes on the baseline and fails on the candidate fails the run.
    fail_on_regression: bool = True


@dataclass(frozen=True)
class Verdict:
    """PASS or FAIL, and every reason for a FAIL."""

    passed: bool
    reasons: list[str]


def assess_gate(comparison: Comparison, gate: Gate) -> Verdict:
    """Judge the candidate: regressions, the pass-rate threshold, errors, nothing passed.

    A case the candidate could not answer (an error response) fails the run even when
    the baseline errs too: an error is never a silent pass.
    """
    reasons: list[str] = []
    regressions = comparison.regressions
    if regressions and gate.fail_on_regression:
        ids = ", ".join(c.case_id for c in regressions)
        reasons.append(f"{len(regressions)} regression(s) ({ids})")
    required = gate.min_pass_rate * comparison.baseline.passed
    if comparison.candidate.passed < required - 1e-9:
        reasons.append(
            f"the candidate passes {comparison.candidate.passed} case(s), fewer than "
            f"--min-pass-rate {gate.min_pass_rate:g} x the baseline's "
            f"{comparison.baseline.passed} = {required:g}"
        )
    errored = [c for c in comparison.cases if c.candidate.error is not None]
    if errored:
        ids = ", ".join(c.case_id for c in errored)
        reasons.append(
            f"{len(errored)} case(s) got no answer from the candidate ({ids}; first: "
            f"{errored[0].candidate.error})"
        )
    if comparison.candidate.passed == 0:
        reasons.append("the candidate passes no case")
    return Verdict(passed=not reasons, reasons=reasons)


# --- report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportMeta:
    """What the report was run on."""

    prompt: str
    evalset: str
    baseline: str
    candidate: str
    target: str


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _number(value: float | None, digits: int, unit: str = "", signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:{'+' if signed else ''}.{digits}f}{unit}"


def _rate(summary: VersionSummary) -> str:
    return f"{summary.passed}/{summary.cases} ({summary.pass_rate:.1%})"


def render_verdict(comparison: Comparison, meta: ReportMeta, verdict: Verdict | None = None) -> str:
    """One line: PASS or FAIL, and why (`verdict` defaults to the default gate's)."""
    verdict = verdict or assess_gate(comparison, Gate())
    rates = (
        f"{meta.candidate} passes {comparison.candidate.passed}/{comparison.candidate.cases}, "
        f"{meta.baseline} passes {comparison.baseline.passed}/{comparison.baseline.cases}"
    )
    both = len(comparison.with_status(CaseStatus.SAME_FAIL))
    extra = f"; {both} case(s) fail on both versions" if both else ""
    if not verdict.passed:
        return f"FAIL: {'; '.join(verdict.reasons)}; {rates}{extra}"
    regressions = comparison.regressions
    if regressions:  # tolerated: --no-fail-on-regression
        ids = ", ".join(c.case_id for c in regressions)
        return f"PASS: {len(regressions)} regression(s) tolerated ({ids}); {rates}{extra}"
    return f"PASS: no regressions; {rates}{extra}"


def _summary_table(comparison: Comparison, meta: ReportMeta) -> list[str]:
    old, new, delta = comparison.baseline, comparison.candidate, comparison.deltas
    rows = [
        ("Passed", _rate(old), _rate(new), _number(delta.pass_rate * 100, 1, " pp", True)),
        (
            "Mean latency",
            _number(old.mean_latency_ms, 1, " ms"),
            _number(new.mean_latency_ms, 1, " ms"),
            _number(delta.mean_latency_ms, 1, " ms", True),
        ),
        (
            "Mean input tokens",
            _number(old.mean_input_tokens, 1),
            _number(new.mean_input_tokens, 1),
            _number(delta.mean_input_tokens, 1, "", True),
        ),
        (
            "Mean output tokens",
            _number(old.mean_output_tokens, 1),
            _number(new.mean_output_tokens, 1),
            _number(delta.mean_output_tokens, 1, "", True),
        ),
        (
            "Mean cost (USD)",
            _number(old.mean_cost_usd, 6),
            _number(new.mean_cost_usd, 6),
            _number(delta.mean_cost_usd, 6, "", True),
        ),
    ]
    lines = [
        f"| | {meta.baseline} (baseline) | {meta.candidate} (candidate) | Δ |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {a} | {b} | {d} |" for name, a, b, d in rows]
    counts = " · ".join(f"{s.value}: {len(comparison.with_status(s))}" for s in CaseStatus)
    return [*lines, "", f"Cases: {counts}"]


def _detail(case: CaseComparison, meta: ReportMeta) -> list[str]:
    lines = [f"### `{case.case_id}`", "", f"Question: {' '.join(case.candidate.question.split())}"]
    for version, result in ((meta.baseline, case.baseline), (meta.candidate, case.candidate)):
        verdict = "passed" if result.passed else "failed"
        lines += ["", f"- **{version}**: {verdict} ({result.outcome})"]
        lines += [f"  - {failure}" for failure in result.failures]
        if result.answer:
            lines.append(f"  - answer: {_cell(result.answer)[:300]}")
    return [*lines, ""]


def render_report(comparison: Comparison, meta: ReportMeta, verdict: Verdict | None = None) -> str:
    """The Markdown report: verdict, summary, regressions first, improvements, every case."""
    lines = [
        f"# Eval: {meta.prompt} {meta.baseline} → {meta.candidate}",
        "",
        f"**{render_verdict(comparison, meta, verdict)}**",
        "",
        f"Eval set `{meta.evalset}`, {len(comparison.cases)} cases, run against {meta.target}.",
        "",
        "## Summary",
        "",
        *_summary_table(comparison, meta),
        "",
    ]
    for title, status in (
        ("Regressions", CaseStatus.REGRESSION),
        ("Improvements", CaseStatus.IMPROVEMENT),
    ):
        chosen = comparison.with_status(status)
        lines += [f"## {title} ({len(chosen)})", ""]
        if not chosen:
            lines += ["None.", ""]
        for case in chosen:
            lines += _detail(case, meta)
    lines += [
        "## All cases",
        "",
        f"| Case | Status | {meta.baseline} | {meta.candidate} | Failed checks (candidate) |",
        "|---|---|---|---|---|",
    ]
    for case in comparison.cases:
        old = ("✓ " if case.baseline.passed else "✗ ") + case.baseline.outcome
        new = ("✓ " if case.candidate.passed else "✗ ") + case.candidate.outcome
        failures = _cell("; ".join(case.candidate.failures))
        lines.append(f"| `{case.case_id}` | {case.status.value} | {old} | {new} | {failures} |")
    return "\n".join(lines) + "\n"
