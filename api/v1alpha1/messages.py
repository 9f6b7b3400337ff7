"""Validation messages people can act on: the rule in words, never a raw regular expression.

pydantic reports a pattern mismatch as ``String should match pattern '^(0|[1-9]\\d*)...'``:
correct, unreadable, and cut short in a terminal table. :func:`describe_error` names
the rule instead (``version must be semver, e.g. 1.2.0``) for every pattern the API
defines, and passes other messages through without pydantic's ``Value error,`` prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.v1alpha1.types import (
    COLLECTION_PATTERN,
    DNS_LABEL_PATTERN,
    DURATION_PATTERN,
    PAUSE_PATTERN,
    SEMVER_PATTERN,
    VARIABLE_NAME_PATTERN,
)

__all__ = ["PATTERN_RULES", "describe_error", "describe_pattern"]

#: Each pattern of the API, as the rule a person reads.
PATTERN_RULES: dict[str, str] = {
    SEMVER_PATTERN: "version must be semver, e.g. 1.2.0 (MAJOR.MINOR.PATCH, no leading 'v')",
    DNS_LABEL_PATTERN: (
        "must be a DNS label: lowercase letters, digits and '-', starting and ending with a "
        "letter or digit, e.g. policy-qa"
    ),
    DURATION_PATTERN: "must be a duration such as 30s, 5m, 1h30m or 250ms",
    PAUSE_PATTERN: "must be a duration such as 30s, 5m or 1h30m, or 'manual'",
    VARIABLE_NAME_PATTERN: (
        "must start with a letter or '_' and hold only letters, digits and '_', "
        "e.g. max_length or maxBullets"
    ),
    COLLECTION_PATTERN: "must be 1 to 255 letters, digits, '_' or '-', e.g. policies",
}


def describe_pattern(pattern: str) -> str:
    """The rule a pattern stands for; an unknown pattern is quoted whole, never cut (pure)."""
    return PATTERN_RULES.get(pattern, f"must match the regular expression {pattern!r}")


def describe_error(detail: Mapping[str, Any]) -> str:
    """The message of one pydantic error detail, in words (pure)."""
    context = detail.get("ctx") or {}
    if detail.get("type") == "string_pattern_mismatch" and "pattern" in context:
        return describe_pattern(str(context["pattern"]))
    return str(detail.get("msg", "")).removeprefix("Value error, ")
