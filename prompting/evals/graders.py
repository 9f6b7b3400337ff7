"""Graders: each check of an eval case applied to one answer (pure).

A grader turns one check and one answer into a :class:`Grade`: whether it holds, why it
fails, and why its negation (under ``not:``) fails. Two graders need a number measured
elsewhere (I/O, see ``promptctl.evals.runner``): ``similar_to`` (cosine similarity with
the embedded MiniLM model) and ``llm_rubric`` (a judge model's 0..1 score). They arrive in
a :class:`Measured` map keyed by :func:`measure_key`; a measurement that failed is a
string (the reason) and fails the check either way.

    assess_checks(expect, response, measured) -> list[CheckResult]
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from prompting.evals.evalset import Checks, Expectation
from prompting.tokens import estimate_tokens

__all__ = ["CheckResult", "Grade", "Measured", "assess_checks", "fold", "measure_key"]

#: Similarity or rubric scores by :func:`measure_key`; a string is why measuring failed.
Measured = Mapping[str, float | str]


@dataclass(frozen=True)
class Grade:
    """One check on one answer."""

    passed: bool
    #: The failure lines when the check must hold (empty when it holds).
    failures: list[str]
    #: The failure line when the check is negated and holds.
    negated: str
    score: float | None = None


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict in a run: `name` is e.g. ``contains_any`` or ``not regex``."""

    name: str
    passed: bool
    failures: list[str]
    score: float | None = None


def fold(text: str) -> str:
    """Case- and whitespace-insensitive form of `text`."""
    return " ".join(text.casefold().split())


def measure_key(check: str, negated: bool) -> str:
    """The key of a measured score: ``similar_to`` or ``not.similar_to``."""
    return f"not.{check}" if negated else check


def _phrases(phrases: list[str]) -> str:
    return ", ".join(repr(p) for p in phrases)


def _cited(response: Mapping[str, Any]) -> list[str]:
    return list(dict.fromkeys(str(c.get("source")) for c in response.get("citations") or []))


def grade_outcome(expected: list[str], response: Mapping[str, Any]) -> Grade:
    outcome = str(response.get("outcome"))
    return Grade(
        outcome in expected,
        [f"outcome: got {outcome}, expected {' or '.join(expected)}"],
        f"not outcome: got {outcome}",
    )


def grade_sources_any(expected: list[str], response: Mapping[str, Any]) -> Grade:
    cited = _cited(response)
    wanted = ", ".join(expected)
    hits = [s for s in expected if s in cited]
    return Grade(
        bool(hits),
        [f"sources_any: cited {', '.join(cited) or 'nothing'}, expected one of {wanted}"],
        f"not sources_any: cited {', '.join(hits)}",
    )


def grade_cites_all(expected: list[str], response: Mapping[str, Any]) -> Grade:
    cited = _cited(response)
    missing = [s for s in expected if s not in cited]
    return Grade(
        not missing,
        [f"cites_all: {', '.join(missing)} not cited (cited {', '.join(cited) or 'nothing'})"],
        f"not cites_all: every one of {', '.join(expected)} is cited",
    )


def grade_contains_any(phrases: list[str], response: Mapping[str, Any]) -> Grade:
    answer = fold(str(response.get("answer", "")))
    hits = [p for p in phrases if fold(p) in answer]
    return Grade(
        bool(hits),
        [f"contains_any: the answer has none of {_phrases(phrases)}"],
        f"not contains_any: the answer has {_phrases(hits)}",
    )


def grade_contains_all(phrases: list[str], response: Mapping[str, Any]) -> Grade:
    answer = fold(str(response.get("answer", "")))
    missing = [p for p in phrases if fold(p) not in answer]
    return Grade(
        not missing,
        [f"contains_all: the answer lacks {_phrases(missing)}"],
        f"not contains_all: the answer has every one of {_phrases(phrases)}",
    )


def grade_not_contains(phrases: list[str], response: Mapping[str, Any]) -> Grade:
    answer = fold(str(response.get("answer", "")))
    present = [p for p in phrases if fold(p) in answer]
    return Grade(
        not present,
        [f"not_contains: the answer has {p!r}" for p in present],
        f"not not_contains: the answer has none of {_phrases(phrases)}",
    )


def grade_regex(pattern: str, response: Mapping[str, Any]) -> Grade:
    match = re.search(pattern, str(response.get("answer", "")))
    return Grade(
        match is not None,
        [f"regex: no match for {pattern!r}"],
        f"not regex: {pattern!r} matches {match.group(0)[:80]!r}" if match else "",
    )


def grade_json_schema(schema: dict[str, Any], response: Mapping[str, Any]) -> Grade:
    try:
        document = json.loads(str(response.get("answer", "")))
    except ValueError as error:
        return Grade(False, [f"json_schema: the answer is not JSON ({error})"], "")
    problem = next(iter(Draft202012Validator(schema).iter_errors(document)), None)
    if problem is not None:
        where = "/".join(str(p) for p in problem.absolute_path) or "(root)"
        return Grade(False, [f"json_schema: {where}: {problem.message}"], "")
    return Grade(True, [], "not json_schema: the answer is valid JSON for the schema")


def grade_max_tokens(limit: int, response: Mapping[str, Any]) -> Grade:
    usage = response.get("usage") or {}
    tokens = usage.get("output_tokens")
    if not isinstance(tokens, int):
        tokens = estimate_tokens(str(response.get("answer", "")))
    return Grade(
        tokens <= limit,
        [f"max_tokens: {tokens} output tokens, limit {limit}"],
        f"not max_tokens: {tokens} output tokens, within {limit}",
    )


def grade_max_latency_ms(limit: float, response: Mapping[str, Any]) -> Grade:
    latency = response.get("latency_ms")
    within = isinstance(latency, int | float) and latency <= limit
    return Grade(
        within,
        [f"max_latency_ms: took {latency} ms, limit {limit:g} ms"],
        f"not max_latency_ms: took {latency} ms, within {limit:g} ms",
    )


def _grade_score(check: str, score: float | str | None, minimum: float, what: str) -> Grade:
    if not isinstance(score, float | int):
        reason = score if isinstance(score, str) else "not measured"
        return Grade(False, [f"{check}: {reason}"], f"not {check}: {reason}")
    return Grade(
        score >= minimum,
        [f"{check}: {what} {score:.3f}, below {minimum:g}"],
        f"not {check}: {what} {score:.3f}, at least {minimum:g}",
        score=float(score),
    )


_SIMPLE: dict[str, Callable[[Any, Mapping[str, Any]], Grade]] = {
    "outcome": grade_outcome,
    "sources_any": grade_sources_any,
    "cites_all": grade_cites_all,
    "contains_any": grade_contains_any,
    "contains_all": grade_contains_all,
    "not_contains": grade_not_contains,
    "regex": grade_regex,
    "json_schema": grade_json_schema,
    "max_tokens": grade_max_tokens,
    "max_latency_ms": grade_max_latency_ms,
}


def _grade(
    check: str, checks: Checks, response: Mapping[str, Any], score: float | str | None
) -> Grade:
    if check == "similar_to":
        assert checks.similar_to is not None
        return _grade_score(check, score, checks.similar_to.min, "similarity")
    if check == "llm_rubric":
        assert checks.llm_rubric is not None
        return _grade_score(check, score, checks.llm_rubric.min, "judge score")
    return _SIMPLE[check](getattr(checks, check), response)


def assess_checks(
    expect: Expectation, response: Mapping[str, Any], measured: Measured
) -> list[CheckResult]:
    """Every check of `expect` on one answer, plain checks first, then those under `not`."""
    results: list[CheckResult] = []
    for check in expect.given():
        grade = _grade(check, expect, response, measured.get(measure_key(check, False)))
        results.append(
            CheckResult(check, grade.passed, [] if grade.passed else grade.failures, grade.score)
        )
    if expect.negated is not None:
        for check in expect.negated.given():
            grade = _grade(check, expect.negated, response, measured.get(measure_key(check, True)))
            failed_measure = grade.score is None and check in ("similar_to", "llm_rubric")
            passed = not grade.passed and not failed_measure
            results.append(
                CheckResult(f"not {check}", passed, [] if passed else [grade.negated], grade.score)
            )
    return results
