"""``promptctl diff PROMPT V1 V2``: what changed between two versions of a prompt.

Prints the spec diff the HTML eval report shows: template, variables, model, retrieval,
guardrails, cache and rollout, as a unified diff of each changed section. Exit 0 after
printing (also when nothing changed), 2 when a version's manifest is not found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from promptctl.evals.specdiff import SpecError, build_spec_diff, find_version, render_spec_diff

__all__ = ["diff_command"]


def diff_command(
    prompt: Annotated[str, typer.Argument(help="The prompt, e.g. policy-qa.")],
    old: Annotated[str, typer.Argument(metavar="V1", help="The version to diff from.")],
    new: Annotated[str, typer.Argument(metavar="V2", help="The version to diff to.")],
    prompts_dir: Annotated[
        Path, typer.Option(envvar="PROMPTS_DIR", help="The folder of PromptVersion manifests.")
    ] = Path("prompts"),
) -> None:
    """Show the spec diff between two versions of a prompt (template, model, retrieval, ...)."""
    try:
        before = find_version(prompts_dir, prompt, old)
        after = find_version(prompts_dir, prompt, new)
    except SpecError as error:
        Console(stderr=True).print(f"[red]error[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    typer.echo(render_spec_diff(build_spec_diff(before, after)), nl=False)
