"""Validators of the PromptVersion models: Variable and Rollout."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.v1alpha1.types import Rollout, RolloutStep, StepKind, Variable, VariableType

VALID_VARIABLES = [
    ("plain-string", {"name": "tone"}),
    ("string-enum-default", {"name": "tone", "enum": ["formal", "neutral"], "default": "neutral"}),
    (
        "string-constraints",
        {"name": "code", "pattern": "[A-Z]{3}", "maxLength": 3, "default": "ABC"},
    ),
    ("integer-range", {"name": "n", "type": "integer", "minimum": 1, "maximum": 9, "default": 9}),
    ("number-accepts-int", {"name": "x", "type": "number", "default": 1, "enum": [1, 2.5]}),
    ("boolean", {"name": "b", "type": "boolean", "default": False}),
    ("required-no-default", {"name": "who", "required": True}),
    ("underscore-name", {"name": "_max_length_2"}),
    ("camel-case-name", {"name": "maxBullets", "type": "integer", "default": 5}),
]


@pytest.mark.parametrize(
    "data", [case[1] for case in VALID_VARIABLES], ids=[case[0] for case in VALID_VARIABLES]
)
def test_valid_variables(data: dict[str, Any]) -> None:
    variable = Variable.model_validate(data)
    assert variable.name == data["name"]


INVALID_VARIABLES = [
    ("reserved-question", {"name": "question"}, "'question' is reserved"),
    ("reserved-context", {"name": "context"}, "'context' is reserved"),
    ("leading-digit", {"name": "1tone"}, "String should match pattern"),
    ("dash-in-name", {"name": "max-bullets"}, "String should match pattern"),
    ("name-too-long", {"name": "x" * 64}, "at most 63 characters"),
    ("unknown-field", {"name": "x", "defualt": 1}, "Extra inputs are not permitted"),
    (
        "bool-is-not-integer",
        {"name": "n", "type": "integer", "default": True},
        "default True is not of type integer",
    ),
    (
        "string-is-not-number",
        {"name": "x", "type": "number", "default": "1"},
        "default '1' is not of type number",
    ),
    (
        "float-is-not-integer",
        {"name": "n", "type": "integer", "default": 1.5},
        "default 1.5 is not of type integer",
    ),
    (
        "enum-wrong-type",
        {"name": "n", "type": "integer", "enum": [1, "two"]},
        "enum value 'two' is not of type integer",
    ),
    ("empty-enum", {"name": "t", "enum": []}, "at least 1 item"),
    (
        "default-not-in-enum",
        {"name": "t", "enum": ["a", "b"], "default": "c"},
        "default 'c' is not one of ['a', 'b']",
    ),
    (
        "default-below-minimum",
        {"name": "n", "type": "integer", "minimum": 20, "default": 10},
        "default 10 is less than minimum 20.0",
    ),
    (
        "default-above-maximum",
        {"name": "n", "type": "number", "maximum": 1, "default": 1.5},
        "default 1.5 is greater than maximum 1.0",
    ),
    (
        "default-too-long",
        {"name": "t", "maxLength": 2, "default": "abc"},
        "default 'abc' is longer than maxLength 2",
    ),
    (
        "default-does-not-match",
        {"name": "t", "pattern": "[a-z]+", "default": "abc1"},
        "does not match pattern '[a-z]+'",
    ),
    (
        "range-on-string",
        {"name": "t", "minimum": 1},
        "minimum/maximum apply to integer and number variables only",
    ),
    (
        "pattern-on-integer",
        {"name": "n", "type": "integer", "pattern": "1+"},
        "pattern/maxLength apply to string variables only",
    ),
    (
        "minimum-above-maximum",
        {"name": "n", "type": "integer", "minimum": 5, "maximum": 1},
        "minimum is greater than maximum",
    ),
    (
        "required-with-default",
        {"name": "t", "required": True, "default": "x"},
        "a required variable cannot have a default",
    ),
    ("bad-regex", {"name": "t", "pattern": "(unclosed"}, "pattern does not compile"),
    ("unknown-type", {"name": "t", "type": "object"}, "Input should be"),
]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [case[1:] for case in INVALID_VARIABLES],
    ids=[case[0] for case in INVALID_VARIABLES],
)
def test_invalid_variables(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Variable.model_validate(data, by_alias=True, by_name=False)
    assert fragment in str(caught.value)


def test_variable_defaults() -> None:
    variable = Variable(name="tone")
    assert (variable.type, variable.required, variable.default) == (
        VariableType.STRING,
        False,
        None,
    )


@pytest.mark.parametrize(
    ("weights", "valid"),
    [
        ([], True),
        ([100], True),
        ([10, 50], True),
        ([1, 2, 3, 100], True),
        ([50, 10], False),
        ([10, 10], False),
        ([10, 50, 40], False),
    ],
    ids=["no-steps", "one-step", "increasing", "to-100", "decreasing", "repeated", "dip"],
)
def test_rollout_weights_must_strictly_increase(weights: list[int], valid: bool) -> None:
    data = {"steps": [{"weight": weight} for weight in weights]}
    if valid:
        assert [s.weight for s in Rollout.model_validate(data).steps] == weights
    else:
        with pytest.raises(ValidationError, match="step weights must strictly increase"):
            Rollout.model_validate(data)


@pytest.mark.parametrize(
    ("step", "valid"),
    [
        ({"weight": 1}, True),
        ({"weight": 100, "pause": "manual"}, True),
        ({"weight": 20, "pause": "1h30m"}, True),
        ({"weight": 20, "pause": "250ms"}, True),
        ({"weight": 0}, False),
        ({"weight": 101}, False),
        ({"weight": 20, "pause": "5 minutes"}, False),
        ({"weight": 20, "pause": "Manual"}, False),
        ({"weight": 20, "pause": "5d"}, False),
    ],
    ids=["min", "manual", "compound", "millis", "zero", "over-100", "words", "case", "days"],
)
def test_rollout_step(step: dict[str, Any], valid: bool) -> None:
    if valid:
        assert RolloutStep.model_validate(step).weight == step["weight"]
    else:
        with pytest.raises(ValidationError):
            RolloutStep.model_validate(step)


def test_rollout_defaults() -> None:
    rollout = Rollout()
    assert [(s.weight, s.pause) for s in rollout.steps] == [(10, "1m"), (50, "1m")]
    # 10 s analyses and two consecutive failures: a sustained breach rolls back in ~20-30 s.
    assert (rollout.analysis.interval, rollout.analysis.failure_limit) == ("10s", 2)


# --- shadow steps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ([{"shadow": {"percent": 10, "duration": "1m"}}, {"weight": 10}], None),
        ([{"shadow": {"percent": 10, "duration": "1m"}}] * 2 + [{"weight": 10}], None),
        ([{"weight": 10}, {"shadow": {"percent": 10, "duration": "1m"}}], "shadow step after"),
        ([{"weight": 10, "shadow": {"percent": 10, "duration": "1m"}}], "either weight or shadow"),
        ([{"pause": "1m"}], "either weight or shadow"),
        ([{"shadow": {"percent": 10, "duration": "1m"}, "pause": "1m"}], "takes no pause"),
        ([{"shadow": {"percent": 0, "duration": "1m"}}], "greater than or equal to 1"),
        ([{"shadow": {"percent": 10}}], "duration"),
    ],
    ids=[
        "shadow-then-weight",
        "two-shadows",
        "shadow-after-weight",
        "both",
        "neither",
        "shadow-with-pause",
        "percent-0",
        "no-duration",
    ],
)
def test_shadow_steps_are_checked(steps: list[dict[str, Any]], problem: str | None) -> None:
    if problem is None:
        rollout = Rollout.model_validate({"steps": steps, "maxShadowPerMinute": 30})
        assert rollout.steps[0].kind is StepKind.SHADOW
        assert [s.live_weight for s in rollout.steps][-1] == 10
        assert rollout.max_shadow_per_minute == 30
        return
    with pytest.raises(ValidationError, match=problem):
        Rollout.model_validate({"steps": steps})
