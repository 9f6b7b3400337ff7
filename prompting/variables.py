"""Validation of request variables against a PromptVersion's declarations (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from api.v1alpha1 import Scalar, Variable, VariableType, value_matches_type
from prompting.errors import VariableError, VariableProblem

__all__ = ["resolve_variables"]

_TYPE_NAMES = {
    VariableType.STRING: "a string",
    VariableType.INTEGER: "an integer",
    VariableType.NUMBER: "a number",
    VariableType.BOOLEAN: "a boolean",
}


def resolve_variables(
    declared: Sequence[Variable], supplied: Mapping[str, object]
) -> dict[str, Scalar]:
    """Check supplied values and fill defaults; VariableError lists every broken rule."""
    problems: list[VariableProblem] = []
    known = {variable.name for variable in declared}
    for name in sorted(set(supplied) - known):
        problems.append(VariableProblem(name, "unknown", "is not declared by this prompt version"))
    resolved: dict[str, Scalar] = {}
    for variable in declared:
        if variable.name in supplied:
            value = supplied[variable.name]
            found = _check(variable, value)
            problems.extend(found)
            if not found:
                resolved[variable.name] = _normalise(value, variable.type)
        elif variable.required:
            problems.append(VariableProblem(variable.name, "required", "is required"))
        elif variable.default is not None:
            resolved[variable.name] = variable.default
        else:
            resolved[variable.name] = _empty(variable.type)
    if problems:
        raise VariableError(problems)
    return resolved


def _empty(kind: VariableType) -> Scalar:
    """The value an optional variable without a default renders as."""
    empties: dict[VariableType, Scalar] = {
        VariableType.STRING: "",
        VariableType.INTEGER: 0,
        VariableType.NUMBER: 0.0,
        VariableType.BOOLEAN: False,
    }
    return empties[kind]


def _normalise(value: object, kind: VariableType) -> Scalar:
    """A type-checked value as the template sees it (JSON 120.0 is the integer 120)."""
    if kind is VariableType.INTEGER and isinstance(value, float):
        return int(value)
    assert isinstance(value, bool | int | float | str)  # guaranteed by _check
    return value


def _check(variable: Variable, value: object) -> list[VariableProblem]:
    """Every rule `value` breaks, in declaration order; type first, alone."""
    name = variable.name
    if not _is_type(value, variable.type):
        got = "null" if value is None else type(value).__name__
        if isinstance(value, float) and not math.isfinite(value):
            got = str(value)
        return [VariableProblem(name, "type", f"must be {_TYPE_NAMES[variable.type]}, got {got}")]
    problems: list[VariableProblem] = []
    if variable.enum is not None and value not in variable.enum:
        allowed = ", ".join(repr(option) for option in variable.enum)
        problems.append(VariableProblem(name, "enum", f"must be one of {allowed}"))
    if isinstance(value, str):
        if variable.max_length is not None and len(value) > variable.max_length:
            problems.append(
                VariableProblem(
                    name, "maxLength", f"must be at most {variable.max_length} characters"
                )
            )
        if variable.pattern is not None and re.fullmatch(variable.pattern, value) is None:
            problems.append(
                VariableProblem(name, "pattern", f"must match the pattern {variable.pattern!r}")
            )
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if variable.minimum is not None and value < variable.minimum:
            problems.append(
                VariableProblem(name, "minimum", f"must be at least {variable.minimum:g}")
            )
        if variable.maximum is not None and value > variable.maximum:
            problems.append(
                VariableProblem(name, "maximum", f"must be at most {variable.maximum:g}")
            )
    return problems


def _is_type(value: object, kind: VariableType) -> bool:
    """The declaration's type check, plus what JSON requests need: 120.0 is an integer, and
    NaN or Infinity (which compare false with every bound) are not numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if kind is VariableType.INTEGER and isinstance(value, float) and value.is_integer():
        return True
    return value_matches_type(value, kind)
