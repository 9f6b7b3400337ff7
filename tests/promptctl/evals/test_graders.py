"""Every grader, plain and under `not`, as tables; the eval-set rules the new checks add."""

from __future__ import annotations

from typing import Any

import pytest

from prompting.evals.evalset import CHECK_NAMES, EvalCase, EvalSetError, parse_evalset
from prompting.evals.graders import assess_checks
from tests.promptctl.evals.builders import answer, case, score_case

JSON_ANSWER = answer(answer='{"summary": "Refund within 14 days", "next_action": "refund"}')
SCHEMA = {
    "type": "object",
    "required": ["summary", "next_action"],
    "properties": {"next_action": {"enum": ["refund", "replace", "escalate"]}},
}


@pytest.mark.parametrize(
    ("expect", "response", "failures"),
    [
        ({"cites_all": ["digital-goods.md"]}, answer(), []),
        (
            {"cites_all": ["digital-goods.md", "refunds.md"]},
            answer(),
            ["cites_all: refunds.md not cited (cited digital-goods.md)"],
        ),
        ({"contains_all": ["14 days", "REFUNDED"]}, answer(), []),
        (
            {"contains_all": ["14 days", "receipt", "store credit"]},
            answer(),
            ["contains_all: the answer lacks 'receipt', 'store credit'"],
        ),
        ({"regex": r"\[\d+\]$"}, answer(), []),
        ({"regex": r"(?i)within \d+ days"}, answer(), []),
        ({"regex": r"\d+ weeks"}, answer(), [r"regex: no match for '\\d+ weeks'"]),
        ({"json_schema": SCHEMA}, JSON_ANSWER, []),
        (
            {"json_schema": SCHEMA},
            answer(answer='{"summary": "x", "next_action": "shrug"}'),
            ["json_schema: next_action: 'shrug' is not one of ['refund', 'replace', 'escalate']"],
        ),
        (
            {"json_schema": SCHEMA},
            answer(answer='{"summary": "x"}'),
            ["json_schema: (root): 'next_action' is a required property"],
        ),
        (
            {"json_schema": SCHEMA},
            answer(),
            ["json_schema: the answer is not JSON (Expecting value: line 1 column 1 (char 0))"],
        ),
        ({"max_tokens": 40}, answer(), []),
        ({"max_tokens": 39}, answer(), ["max_tokens: 40 output tokens, limit 39"]),
        # Without usage, tokens are estimated from the answer (4 characters a token).
        ({"max_tokens": 5}, answer(usage={}), ["max_tokens: 16 output tokens, limit 5"]),
    ],
    ids=[
        "cites-all",
        "cites-all-missing",
        "contains-all-any-case",
        "contains-all-missing",
        "regex-anchored",
        "regex-inline-flag",
        "regex-no-match",
        "schema-valid",
        "schema-enum",
        "schema-required",
        "schema-not-json",
        "tokens-at-limit",
        "tokens-over",
        "tokens-estimated",
    ],
)
def test_graders(expect: dict[str, Any], response: dict[str, Any], failures: list[str]) -> None:
    scored = score_case(case(**expect), response)
    assert scored.failures == failures
    assert scored.passed is (not failures)


@pytest.mark.parametrize(
    ("negated", "response", "failures"),
    [
        ({"outcome": "refused"}, answer(), []),
        ({"outcome": "answered"}, answer(), ["not outcome: got answered"]),
        ({"sources_any": ["refunds.md"]}, answer(), []),
        (
            {"sources_any": ["digital-goods.md"]},
            answer(),
            ["not sources_any: cited digital-goods.md"],
        ),
        ({"contains_any": ["Paris"]}, answer(), []),
        (
            {"contains_any": ["paris", "14 days"]},
            answer(),
            ["not contains_any: the answer has '14 days'"],
        ),
        ({"contains_all": ["14 days", "Paris"]}, answer(), []),
        (
            {"contains_all": ["14 days"]},
            answer(),
            ["not contains_all: the answer has every one of '14 days'"],
        ),
        ({"regex": r"\[\d+\]"}, answer(answer="Not covered by policy."), []),
        ({"regex": r"\[\d+\]"}, answer(), [r"not regex: '\\[\\d+\\]' matches '[1]'"]),
        ({"json_schema": SCHEMA}, answer(), []),
        (
            {"json_schema": SCHEMA},
            JSON_ANSWER,
            ["not json_schema: the answer is valid JSON for the schema"],
        ),
        ({"max_tokens": 10}, answer(), []),
        ({"max_latency_ms": 100}, answer(), []),
        ({"max_latency_ms": 500}, answer(), ["not max_latency_ms: took 120.0 ms, within 500 ms"]),
        (
            {"cites_all": ["digital-goods.md"]},
            answer(),
            ["not cites_all: every one of digital-goods.md is cited"],
        ),
        (
            {"not_contains": ["Paris"]},
            answer(),
            ["not not_contains: the answer has none of 'Paris'"],
        ),
    ],
    ids=[
        "outcome",
        "outcome-holds",
        "sources",
        "sources-hold",
        "contains-any",
        "contains-any-holds",
        "contains-all",
        "contains-all-holds",
        "regex",
        "regex-holds",
        "schema",
        "schema-holds",
        "tokens",
        "latency",
        "latency-holds",
        "cites-all-holds",
        "not-contains-holds",
    ],
)
def test_every_check_is_negatable(
    negated: dict[str, Any], response: dict[str, Any], failures: list[str]
) -> None:
    evalcase = EvalCase.model_validate({"id": "c1", "question": "q", "expect": {"not": negated}})
    scored = score_case(evalcase, response)
    assert scored.failures == failures
    assert scored.passed is (not failures)


def test_every_check_name_has_a_grader_and_a_negation() -> None:
    """A check added to the format without a grader would fail here, not silently pass."""
    samples: dict[str, Any] = {
        "outcome": "answered",
        "sources_any": ["a.md"],
        "cites_all": ["a.md"],
        "contains_any": ["x"],
        "contains_all": ["x"],
        "not_contains": ["x"],
        "regex": "x",
        "json_schema": {"type": "object"},
        "max_tokens": 1,
        "max_latency_ms": 1,
        "similar_to": {"text": "x"},
        "llm_rubric": {"rubric": "x"},
    }
    assert set(samples) == set(CHECK_NAMES)
    expect = EvalCase.model_validate(
        {"id": "c", "question": "q", "expect": {**samples, "not": samples}}
    ).expect
    names = [c.name for c in assess_checks(expect, answer(), {})]
    assert names == [*CHECK_NAMES, *(f"not {n}" for n in CHECK_NAMES)]


@pytest.mark.parametrize(
    ("check", "measured", "passed", "failures"),
    [
        ({"similar_to": {"text": "t", "min": 0.8}}, {"similar_to": 0.8}, True, []),
        (
            {"similar_to": {"text": "t", "min": 0.8}},
            {"similar_to": 0.79},
            False,
            ["similar_to: similarity 0.790, below 0.8"],
        ),
        (
            {"llm_rubric": {"rubric": "r", "min": 0.5}},
            {"llm_rubric": 0.5},
            True,
            [],
        ),
        (
            {"llm_rubric": {"rubric": "r"}},
            {"llm_rubric": 0.25},
            False,
            ["llm_rubric: judge score 0.250, below 0.7"],
        ),
        (
            {"llm_rubric": {"rubric": "r"}},
            {"llm_rubric": "the judge (m) failed: HTTP 503"},
            False,
            ["llm_rubric: the judge (m) failed: HTTP 503"],
        ),
        ({"llm_rubric": {"rubric": "r"}}, {}, False, ["llm_rubric: not measured"]),
        ({"not": {"similar_to": {"text": "t", "min": 0.5}}}, {"not.similar_to": 0.2}, True, []),
        (
            {"not": {"similar_to": {"text": "t", "min": 0.5}}},
            {"not.similar_to": 0.9},
            False,
            ["not similar_to: similarity 0.900, at least 0.5"],
        ),
        (
            {"not": {"llm_rubric": {"rubric": "r"}}},
            {"not.llm_rubric": "no judge model"},
            False,
            ["not llm_rubric: no judge model"],
        ),
    ],
    ids=[
        "similar-at-min",
        "similar-below",
        "rubric-at-min",
        "rubric-below",
        "judge-failed",
        "not-measured",
        "not-similar",
        "not-similar-too-close",
        "negated-judge-failure-still-fails",
    ],
)
def test_measured_checks(
    check: dict[str, Any], measured: dict[str, Any], passed: bool, failures: list[str]
) -> None:
    scored = score_case(case(**check), answer(), measured)
    assert scored.passed is passed
    assert scored.failures == failures


def test_weight_and_checks_under_not_alone_are_a_valid_case() -> None:
    evalset = parse_evalset(
        "prompt: p\ncases:\n  - id: a\n    question: q\n    weight: 2.5\n"
        "    expect:\n      not: {outcome: refused}\n"
    )
    assert evalset.cases[0].weight == 2.5
    assert evalset.uses("outcome")
    assert not evalset.uses("similar_to")


def test_todays_format_still_parses_unchanged() -> None:
    """Eval sets written for the five original checks stay valid, with the same checks."""
    evalset = parse_evalset(
        "prompt: faq-bot\ncases:\n  - id: a\n    question: q\n    variables: {tone: x}\n"
        "    user: u\n    expect:\n      outcome: [answered, fallback]\n"
        "      sources_any: [a.md]\n      contains_any: [x]\n      not_contains: [y]\n"
        "      max_latency_ms: 5000\n"
    )
    expect = evalset.cases[0].expect
    assert expect.given() == [
        "outcome",
        "sources_any",
        "contains_any",
        "not_contains",
        "max_latency_ms",
    ]
    assert expect.negated is None
    assert evalset.cases[0].weight == 1.0


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("{regex: '('}", "case 'a' expect.regex: not a valid regular expression: missing )"),
        ("{json_schema: {type: 12}}", "case 'a' expect.json_schema: not a valid JSON Schema"),
        (
            "{not: {not: {outcome: unknown}}}",
            "case 'a' expect.not.not: Extra inputs are not permitted",
        ),
        ("{not: {}}", "case 'a' expect: give at least one check"),
        ("{similar_to: {text: x, min: 2}}", "case 'a' expect.similar_to.min: Input should be less"),
        ("{llm_rubric: {rubric: ''}}", "case 'a' expect.llm_rubric.rubric: String should have"),
        (
            "{max_tokens: 0}",
            "case 'a' expect.max_tokens: Input should be greater than or equal to 1",
        ),
        ("{cites_all: ['  ']}", "case 'a' expect.cites_all: entries must not be blank"),
        ("{not: {regx: x}}", "case 'a' expect.not.regx: Extra inputs are not permitted"),
    ],
    ids=[
        "bad-regex",
        "bad-schema",
        "nested-not",
        "empty-not",
        "similarity-range",
        "blank-rubric",
        "zero-tokens",
        "blank-source",
        "typo-under-not",
    ],
)
def test_invalid_new_checks_name_the_field(expect: str, message: str) -> None:
    with pytest.raises(EvalSetError) as raised:
        parse_evalset(f"prompt: p\ncases:\n  - id: a\n    question: q\n    expect: {expect}\n")
    assert any(message in problem for problem in raised.value.problems), raised.value.problems


def test_weight_must_be_positive() -> None:
    with pytest.raises(EvalSetError, match=r"case 'a' weight: Input should be greater than 0"):
        parse_evalset(
            "prompt: p\ncases:\n  - id: a\n    question: q\n    weight: 0\n"
            "    expect: {outcome: unknown}\n"
        )
