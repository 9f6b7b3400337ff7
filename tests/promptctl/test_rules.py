"""The lint rules as a table: each PromptVersion below breaks exactly one rule."""

from __future__ import annotations

from typing import Any

import pytest

from api.v1alpha1 import PromptVersion
from promptctl.rules import LintProblem, lint_versions

ORIGIN = "prompts/faq.yaml"


def _version(
    *,
    name: str = "faq-1-0-0",
    version: str = "1.0.0",
    system: str = "Answer in a {{ tone }} tone.",
    user: str = "CONTEXT:\n{{ context }}\n\nQUESTION:\n{{ question }}",
    variables: tuple[str, ...] = ("tone",),
    retrieval: bool = True,
    forbidden: tuple[str, ...] = ("as an AI language model",),
    changelog: str = "First version.",
) -> PromptVersion:
    """A clean PromptVersion unless an argument says otherwise."""
    spec: dict[str, Any] = {
        "prompt": "faq",
        "version": version,
        "owner": "tests@example.com",
        "changelog": changelog,
        "template": {"system": system, "user": user},
        "variables": [{"name": v} for v in variables],
        "model": {"name": "gpt-4o-mini"},
        "guardrails": {"forbiddenPhrases": list(forbidden)},
    }
    if retrieval:
        spec["retrieval"] = {"collection": "handbook"}
    return PromptVersion.model_validate(
        {
            "apiVersion": "promptrollouts.io/v1alpha1",
            "kind": "PromptVersion",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def _rules(problems: list[LintProblem]) -> list[tuple[str, str]]:
    return [(p.rule, p.severity) for p in problems]


def test_clean_version_has_no_findings() -> None:
    assert lint_versions([(ORIGIN, _version())]) == []


def test_clean_version_without_retrieval_has_no_findings() -> None:
    version = _version(user="{{ question }}", retrieval=False)

    assert lint_versions([(ORIGIN, version)]) == []


def test_no_versions_no_findings() -> None:
    assert lint_versions([]) == []


@pytest.mark.parametrize(
    ("version", "rule", "in_message"),
    [
        pytest.param(
            _version(system="Answer in a {{ tone }} tone for {{ audience }}."),
            "undeclared-variable",
            "'audience'",
            id="undeclared-variable",
        ),
        pytest.param(
            _version(variables=("tone", "audience")),
            "unused-variable",
            "'audience'",
            id="unused-variable",
        ),
        pytest.param(
            _version(user="CONTEXT:\n{{ context }}"),
            "missing-question",
            "{{ question }}",
            id="missing-question",
        ),
        pytest.param(
            _version(user="QUESTION:\n{{ question }}"),
            "missing-context",
            "retrieval is configured",
            id="retrieval-without-context",
        ),
        pytest.param(
            _version(retrieval=False),
            "context-without-retrieval",
            "retrieval is not set",
            id="context-without-retrieval",
        ),
        pytest.param(
            _version(system="Answer in a {{ tone }} tone. Never say AS AN AI LANGUAGE MODEL."),
            "forbidden-phrase",
            "template.system",
            id="forbidden-phrase-in-system-any-case",
        ),
        pytest.param(
            _version(user="{{ context }} {{ question }} as an  AI\u200b language model"),
            "forbidden-phrase",
            "template.user",
            id="forbidden-phrase-in-user-hidden-by-spacing",
        ),
        pytest.param(
            _version(user="{{ context }} {{ question }"),
            "template-syntax",
            "template.user",
            id="template-syntax-user",
        ),
        pytest.param(
            _version(system="{% if tone %}Answer."),
            "template-syntax",
            "template.system",
            id="template-syntax-unclosed-block",
        ),
    ],
)
def test_each_rule_is_reported_alone(version: PromptVersion, rule: str, in_message: str) -> None:
    problems = lint_versions([(ORIGIN, version)])

    assert _rules(problems) == [(rule, "error")]
    assert in_message in problems[0].message
    assert problems[0].origin == f"{ORIGIN} (faq@1.0.0)"


@pytest.mark.parametrize(
    "changelog",
    [pytest.param("", id="empty"), pytest.param("  \n\t", id="blank")],
)
def test_missing_changelog_is_only_a_warning(changelog: str) -> None:
    problems = lint_versions([(ORIGIN, _version(changelog=changelog))])

    assert _rules(problems) == [("missing-changelog", "warning")]


def test_template_syntax_error_hides_the_rules_that_need_a_parse() -> None:
    version = _version(system="{{ undeclared }", variables=("tone", "unused"))

    assert _rules(lint_versions([(ORIGIN, version)])) == [("template-syntax", "error")]


@pytest.mark.parametrize(
    ("first", "second", "rules"),
    [
        pytest.param(
            _version(name="faq-a"),
            _version(name="faq-b"),
            ["duplicate-version"],
            id="same-version-two-names",
        ),
        pytest.param(
            _version(version="1.0.0"),
            _version(version="1.1.0"),
            ["duplicate-name"],
            id="same-name-two-versions",
        ),
        pytest.param(
            _version(),
            _version(),
            ["duplicate-version", "duplicate-name"],
            id="same-version-same-name",
        ),
        pytest.param(
            _version(name="faq-a", version="1.0.0"),
            _version(name="faq-b", version="1.0.0-rc.1"),
            [],
            id="prerelease-is-another-version",
        ),
    ],
)
def test_duplicates_are_reported_on_both_versions(
    first: PromptVersion, second: PromptVersion, rules: list[str]
) -> None:
    problems = lint_versions([("a.yaml", first), ("b.yaml", second)])

    for origin in ("a.yaml", "b.yaml"):
        found = [p.rule for p in problems if p.origin.startswith(f"{origin} ")]
        assert found == rules


def test_findings_follow_input_order_and_carry_each_origin() -> None:
    versions = [
        ("a.yaml", _version(name="faq-a", version="1.0.0", changelog="")),
        ("b.yaml", _version(name="faq-b", version="2.0.0", variables=("tone", "extra"))),
    ]

    problems = lint_versions(versions)

    assert [(p.origin, p.rule) for p in problems] == [
        ("a.yaml (faq@1.0.0)", "missing-changelog"),
        ("b.yaml (faq@2.0.0)", "unused-variable"),
    ]


@pytest.mark.parametrize(
    ("user", "outside"),
    [
        pytest.param("CONTEXT:\n{{ context }}\n\n{{ question }}", 0, id="whole"),
        pytest.param("{{ context }} and again {{ context }} {{ question }}", 0, id="twice-whole"),
        pytest.param("{{ context | replace('<<<', '') }} {{ question }}", 1, id="filtered"),
        pytest.param("{{ context[40:] }} {{ question }}", 1, id="sliced"),
        pytest.param("{{ 'Docs: ' ~ context }} {{ question }}", 1, id="concatenated"),
        pytest.param("{% set c = context %}{{ c }} {{ question }}", 1, id="re-assigned"),
        pytest.param(
            "{% for line in context.splitlines() %}{{ line }}{% endfor %}{{ question }}",
            1,
            id="looped",
        ),
    ],
)
def test_context_outside_the_delimited_block_is_a_warning(user: str, outside: int) -> None:
    problems = lint_versions([(ORIGIN, _version(user=user))])

    if outside:
        assert _rules(problems) == [("context-outside-delimiters", "warning")]
        assert "template.user" in problems[0].message
        assert "REFERENCE markers" in problems[0].message
    else:
        assert problems == []
