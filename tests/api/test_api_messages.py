"""Validation messages name the rule, never a raw regular expression."""

from __future__ import annotations

from typing import Any

import pytest

from api.v1alpha1.manifests import ManifestError, parse_manifest
from api.v1alpha1.messages import PATTERN_RULES, describe_error, describe_pattern

ROLLOUT = "spec.rollout"
GOOD: dict[str, Any] = {
    "apiVersion": "promptrollouts.io/v1alpha1",
    "kind": "PromptVersion",
    "metadata": {"name": "faq-1-0-0"},
    "spec": {
        "prompt": "faq",
        "version": "1.0.0",
        "owner": "me",
        "template": {"system": "S", "user": "{{ question }}"},
        "variables": [{"name": "tone"}],
        "model": {"name": "m"},
        "retrieval": {"collection": "faq"},
        "rollout": {"steps": [{"weight": 10, "pause": "5m"}], "analysis": {"interval": "10s"}},
    },
}


def _with(path: tuple[Any, ...], value: object) -> dict[str, Any]:
    data: dict[str, Any] = {**GOOD, "spec": dict(GOOD["spec"])}
    node: Any = data
    for step in path[:-1]:
        node[step] = (
            [dict(item) for item in node[step]]
            if isinstance(node[step], list)
            else dict(node[step])
        )
        node = node[step]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field", "rule"),
    [
        (("spec", "version"), "v1.0", "spec.version", "version must be semver, e.g. 1.2.0"),
        (("spec", "prompt"), "Policy QA", "spec.prompt", "must be a DNS label"),
        (
            ("spec", "variables", 0, "name"),
            "max-length",
            "spec.variables[0].name",
            "e.g. max_length or maxBullets",
        ),
        (("spec", "retrieval", "collection"), "a b", "spec.retrieval.collection", "e.g. policies"),
        (
            ("spec", "rollout", "steps", 0, "pause"),
            "5 min",
            "spec.rollout.steps[0].pause",
            "'manual'",
        ),
        (
            ("spec", "rollout", "analysis", "interval"),
            "10",
            "spec.rollout.analysis.interval",
            "30s",
        ),
    ],
    ids=["semver", "dns-label", "variable-name", "collection", "pause", "duration"],
)
def test_pattern_errors_name_the_rule(
    path: tuple[Any, ...], value: object, field: str, rule: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(_with(path, value), "x.yaml")
    (problem,) = caught.value.problems
    assert problem.field == field
    assert rule in problem.message
    assert "pattern" not in problem.message and "^" not in problem.message


def test_every_rule_is_short_and_regex_free() -> None:
    for pattern, rule in PATTERN_RULES.items():
        assert pattern.startswith("^") and "^" not in rule and len(rule) < 120


def test_unknown_patterns_are_quoted_whole_and_other_messages_pass_through() -> None:
    assert describe_pattern("^x+$") == "must match the regular expression '^x+$'"
    detail = {"type": "value_error", "msg": "Value error, min is greater than max"}
    assert describe_error(detail) == "min is greater than max"
