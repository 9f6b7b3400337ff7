"""``promptctl lint``: validate PromptVersion manifests before they reach a cluster."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.v1alpha1 import PromptVersion
from api.v1alpha1.manifests import ManifestError, load_manifests, manifest_files
from promptctl.rules import LintProblem, lint_versions

__all__ = ["lint_command"]


class OutputFormat(StrEnum):
    """How findings are printed."""

    TEXT = "text"
    JSON = "json"


def collect_problems(path: Path) -> tuple[int, list[LintProblem]]:
    """Number of PromptVersions read and every finding for the manifests under `path`."""
    versions: list[tuple[str, PromptVersion]] = []
    problems: list[LintProblem] = []
    for file in manifest_files(path):
        try:
            versions += [(str(file), version) for version in load_manifests(file)]
        except ManifestError as error:
            problems += [
                LintProblem(f"{p.file}[{p.document}]", "schema", f"{p.field}: {p.message}")
                for p in error.problems
            ]
    return len(versions), problems + lint_versions(versions)


def lint_command(
    path: Annotated[Path, typer.Argument(exists=True, help="A manifest file or a folder of them.")],
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TEXT,
    strict: Annotated[bool, typer.Option(help="Fail on warnings too.")] = False,
) -> None:
    """Check schema, semver, duplicates, variables, CONTEXT, forbidden phrases and output."""
    count, problems = collect_problems(path)
    failing = [p for p in problems if p.severity == "error" or strict]
    if output is OutputFormat.JSON:
        typer.echo(json.dumps({"versions": count, "problems": [vars(p) for p in problems]}))
    else:
        _print_table(count, problems)
    if failing or count == 0:
        raise typer.Exit(code=1)


def _print_table(count: int, problems: list[LintProblem]) -> None:
    console = Console()
    if count == 0 and not problems:
        console.print("[red]no PromptVersion manifests found[/red]")
        return
    if not problems:
        console.print(f"[green]✓[/green] {count} PromptVersion(s), no problems")
        return
    table = Table("severity", "where", "rule", "message", title=f"{len(problems)} problem(s)")
    for problem in problems:
        colour = "red" if problem.severity == "error" else "yellow"
        table.add_row(
            f"[{colour}]{problem.severity}[/{colour}]",
            escape(problem.origin),
            problem.rule,
            escape(problem.message),
        )
    console.print(table)
