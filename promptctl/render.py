"""``promptctl render``: show the messages a PromptVersion produces for given inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from api.v1alpha1 import PromptVersion, Scalar, VariableType
from api.v1alpha1.manifests import ManifestError, load_manifests
from prompting.errors import TemplateError, VariableError
from prompting.rendering import compile_prompt, render_messages
from prompting.variables import resolve_variables

__all__ = ["parse_assignments", "render_command"]


def parse_assignments(assignments: list[str], version: PromptVersion) -> dict[str, object]:
    """`name=value` pairs, each value read as its declared type (pure)."""
    values: dict[str, object] = {}
    for assignment in assignments:
        name, separator, raw = assignment.partition("=")
        if not separator or not name:
            raise typer.BadParameter(f"{assignment!r} is not NAME=VALUE", param_hint="--var")
        declared = version.spec.variable(name)
        values[name] = _convert(raw, declared.type if declared else VariableType.STRING)
    return values


def _convert(raw: str, kind: VariableType) -> Scalar:
    """A command-line string as the JSON value a request would carry; unparsable stays a string."""
    if kind is VariableType.STRING:
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, bool | int | float) else raw


def _select(versions: list[PromptVersion], wanted: str | None, file: Path) -> PromptVersion:
    if wanted is not None:
        matches = [v for v in versions if v.spec.version == wanted]
        if not matches:
            raise typer.BadParameter(f"{file} has no version {wanted}", param_hint="--version")
        return matches[0]
    if len(versions) != 1:
        found = ", ".join(v.spec.version for v in versions)
        raise typer.BadParameter(f"{file} holds {found}: choose one", param_hint="--version")
    return versions[0]


def render_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A manifest file.")],
    question: Annotated[str, typer.Option(help="The user's question.")],
    var: Annotated[list[str] | None, typer.Option("--var", help="NAME=VALUE, repeatable.")] = None,
    context: Annotated[str, typer.Option(help="Text of the CONTEXT block.")] = "",
    version: Annotated[
        str | None, typer.Option(help="Version to render from a multi-doc file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the messages as JSON.")] = False,
) -> None:
    """Print the rendered system and user messages."""
    err = Console(stderr=True)
    try:
        chosen = _select(load_manifests(file), version, file)
        values = resolve_variables(chosen.spec.variables, parse_assignments(var or [], chosen))
        messages = render_messages(
            compile_prompt(chosen.spec.template),
            {**values, "question": question, "context": context},
        )
    except VariableError as error:
        for problem in error.problems:
            err.print(
                "[red]error[/red] "
                + escape(f"variable {problem.variable} ({problem.rule}): {problem.message}")
            )
        raise typer.Exit(code=2) from error
    except (ManifestError, TemplateError) as error:
        err.print(f"[red]error[/red] {escape(str(error))}")
        raise typer.Exit(code=2) from error
    if as_json:
        typer.echo(json.dumps([{"role": m.role, "content": m.content} for m in messages], indent=2))
        return
    console = Console()
    for message in messages:
        console.print(Panel(Text(message.content), title=message.role, title_align="left"))
