"""Request variables against their declarations."""

from __future__ import annotations

from typing import Any

import pytest

from api.v1alpha1 import Variable
from prompting.variables import resolve_variables
from service.errors import VariableError

DECLARED = [
    Variable(name="tone", enum=["formal", "friendly"], default="formal"),
    Variable(name="max_length", type="integer", minimum=20, maximum=400, default=120),
    Variable(name="audience", required=True, max_length=20, pattern=r"[a-z ]+"),
    Variable(name="ratio", type="number", minimum=0, maximum=1),
    Variable(name="strict", type="boolean", default=False),
]


@pytest.mark.parametrize(
    ("supplied", "expected"),
    [
        (
            {"audience": "customers"},
            {
                "tone": "formal",
                "max_length": 120,
                "audience": "customers",
                "ratio": 0.0,
                "strict": False,
            },
        ),
        (
            {"audience": "staff", "tone": "friendly", "max_length": 20, "ratio": 1, "strict": True},
            {"tone": "friendly", "max_length": 20, "audience": "staff", "ratio": 1, "strict": True},
        ),
        ({"audience": "staff", "max_length": 50.0}, {"max_length": 50}),
    ],
    ids=["defaults-fill-the-rest", "all-supplied-at-bounds", "integral-float-is-an-integer"],
)
def test_valid(supplied: dict[str, Any], expected: dict[str, Any]) -> None:
    resolved = resolve_variables(DECLARED, supplied)
    assert resolved | expected == resolved
    assert type(resolved["max_length"]) is int


@pytest.mark.parametrize(
    ("supplied", "variable", "rule"),
    [
        ({}, "audience", "required"),
        ({"audience": "x", "colour": "red"}, "colour", "unknown"),
        ({"audience": "x", "tone": "rude"}, "tone", "enum"),
        ({"audience": "x", "max_length": "120"}, "max_length", "type"),
        ({"audience": "x", "max_length": 12.5}, "max_length", "type"),
        ({"audience": "x", "max_length": True}, "max_length", "type"),
        ({"audience": "x", "max_length": 19}, "max_length", "minimum"),
        ({"audience": "x", "max_length": 401}, "max_length", "maximum"),
        ({"audience": "x", "ratio": -0.1}, "ratio", "minimum"),
        ({"audience": "x", "ratio": float("nan")}, "ratio", "type"),
        ({"audience": "x", "ratio": float("inf")}, "ratio", "type"),
        ({"audience": "x", "strict": "yes"}, "strict", "type"),
        ({"audience": "UPPER"}, "audience", "pattern"),
        ({"audience": "a" * 21}, "audience", "maxLength"),
        ({"audience": None}, "audience", "type"),
        ({"audience": 7}, "audience", "type"),
    ],
    ids=[
        "missing-required",
        "unknown",
        "enum",
        "string-for-integer",
        "fraction-for-integer",
        "bool-for-integer",
        "below-minimum",
        "above-maximum",
        "number-below-minimum",
        "nan",
        "infinity",
        "string-for-boolean",
        "pattern",
        "max-length",
        "null",
        "number-for-string",
    ],
)
def test_invalid_names_variable_and_rule(
    supplied: dict[str, Any], variable: str, rule: str
) -> None:
    with pytest.raises(VariableError) as caught:
        resolve_variables(DECLARED, supplied)
    assert (variable, rule) in [(p.variable, p.rule) for p in caught.value.problems]
    assert variable in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(VariableError) as caught:
        resolve_variables(DECLARED, {"tone": "rude", "max_length": 1, "extra": 1})
    rules = sorted((p.variable, p.rule) for p in caught.value.problems)
    assert rules == [
        ("audience", "required"),
        ("extra", "unknown"),
        ("max_length", "minimum"),
        ("tone", "enum"),
    ]


def test_pattern_must_match_the_whole_value() -> None:
    with pytest.raises(VariableError, match="pattern"):
        resolve_variables(DECLARED, {"audience": "ok but 123"})
