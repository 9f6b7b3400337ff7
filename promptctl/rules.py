"""The rules ``promptctl lint`` applies to PromptVersions beyond their schema (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from jinja2 import nodes

from api.v1alpha1 import RESERVED_VARIABLES, PromptVersion
from prompting.errors import TemplateError
from prompting.phrases import find_forbidden_phrase
from prompting.rendering import build_environment, compile_prompt, referenced_variables

__all__ = ["LintProblem", "count_undelimited_context", "lint_versions"]

_ENVIRONMENT = build_environment()

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class LintProblem:
    """One finding: where, which rule, how bad, and what to do."""

    origin: str
    rule: str
    message: str
    severity: Severity = "error"


def lint_versions(versions: Sequence[tuple[str, PromptVersion]]) -> list[LintProblem]:
    """Findings for schema-valid PromptVersions, each paired with the file it came from."""
    problems: list[LintProblem] = []
    counts = Counter((v.spec.prompt, v.spec.version) for _, v in versions)
    names = Counter(v.metadata.name for _, v in versions)
    for origin, version in versions:
        spec = version.spec
        where = f"{origin} ({spec.prompt}@{spec.version})"
        if counts[(spec.prompt, spec.version)] > 1:
            problems.append(
                LintProblem(where, "duplicate-version", f"version {spec.version} is declared twice")
            )
        if names[version.metadata.name] > 1:
            problems.append(
                LintProblem(
                    where, "duplicate-name", f"metadata.name {version.metadata.name} is used twice"
                )
            )
        problems.extend(_lint_template(where, version))
        problems.extend(_lint_output(where, version))
    return problems


def _lint_output(where: str, version: PromptVersion) -> list[LintProblem]:
    """An output contract's template must ask for JSON (the schema is checked at parse time).

    Upstreams without JSON-schema support (``MODEL_RESPONSE_FORMAT=json_object`` or
    ``none``, or the fallback after a 400) only have the prompt's word for it, and OpenAI's
    ``json_object`` mode rejects messages that never say "JSON".
    """
    output = version.spec.output
    template = version.spec.template
    if output is None or "json" in f"{template.system}\n{template.user}".casefold():
        return []
    return [
        LintProblem(
            where,
            "output-format-not-mentioned",
            f"output.format is {output.format} but neither template.system nor template.user "
            "mentions JSON: say that the answer is a JSON document (and what it holds)",
        )
    ]


def count_undelimited_context(source: str) -> int:
    """Uses of ``context`` other than a whole ``{{ context }}`` output (pure).

    The service fills ``context`` with the retrieved passages already enclosed in their
    REFERENCE markers; filtering, slicing, concatenating or re-assigning it can cut the
    markers off and hand documents the prompt's voice.
    """
    parsed = _ENVIRONMENT.parse(source)
    uses = [n for n in parsed.find_all(nodes.Name) if n.name == "context" and n.ctx == "load"]
    whole = [
        child
        for output in parsed.find_all(nodes.Output)
        for child in output.nodes
        if isinstance(child, nodes.Name) and child.name == "context"
    ]
    return len(uses) - len(whole)


def _lint_template(where: str, version: PromptVersion) -> list[LintProblem]:
    spec = version.spec
    try:
        compile_prompt(spec.template)
        used_by_message = referenced_variables(spec.template)
    except TemplateError as error:
        return [LintProblem(where, "template-syntax", str(error))]
    used = set().union(*used_by_message.values())
    declared = {variable.name for variable in spec.variables}
    problems = [
        LintProblem(where, "undeclared-variable", f"templates use '{name}' but do not declare it")
        for name in sorted(used - declared - RESERVED_VARIABLES)
    ]
    problems += [
        LintProblem(where, "unused-variable", f"variable '{name}' is declared but never used")
        for name in sorted(declared - used)
    ]
    if "question" not in used:
        problems.append(
            LintProblem(where, "missing-question", "templates never use {{ question }}")
        )
    if spec.retrieval is not None and "context" not in used:
        problems.append(
            LintProblem(
                where,
                "missing-context",
                "retrieval is configured but the templates have no {{ context }} (CONTEXT block)",
            )
        )
    if spec.retrieval is None and "context" in used:
        problems.append(
            LintProblem(
                where, "context-without-retrieval", "{{ context }} is used but retrieval is not set"
            )
        )
    for which, text in (("system", spec.template.system), ("user", spec.template.user)):
        if count_undelimited_context(text):
            problems.append(
                LintProblem(
                    where,
                    "context-outside-delimiters",
                    f"template.{which} uses context other than as a whole {{{{ context }}}}: "
                    "filters, slices or expressions can strip the REFERENCE markers that mark "
                    "retrieved text as untrusted",
                    severity="warning",
                )
            )
        phrase = find_forbidden_phrase(text, spec.guardrails.forbidden_phrases)
        if phrase is not None:
            problems.append(
                LintProblem(
                    where,
                    "forbidden-phrase",
                    f"template.{which} contains the forbidden phrase {phrase!r}",
                )
            )
    if not spec.changelog.strip():
        problems.append(
            LintProblem(where, "missing-changelog", "changelog is empty", severity="warning")
        )
    return problems
