"""The ``promptctl`` entry point: one Typer app, one module per command."""

from __future__ import annotations

import typer

from promptctl.crd import crd_command
from promptctl.diff import diff_command
from promptctl.eval import eval_command
from promptctl.fake_model import fake_model_command
from promptctl.index import index_command
from promptctl.keys import keys_app
from promptctl.lint import lint_command
from promptctl.rehearse import rehearse_command
from promptctl.render import render_command
from promptctl.rollouts import (
    abort_command,
    pause_command,
    promote_command,
    resume_command,
    retry_command,
    status_command,
)

__all__ = ["app"]

app = typer.Typer(
    name="promptctl",
    help="Render, lint and index PromptVersions; manage their rollouts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("render")(render_command)
app.command("lint")(lint_command)
app.command("eval")(eval_command)
app.command("diff")(diff_command)
app.command("index")(index_command)
app.command("crd")(crd_command)
app.command("fake-model")(fake_model_command)
app.command("status")(status_command)
app.command("promote")(promote_command)
app.command("abort")(abort_command)
app.command("pause")(pause_command)
app.command("resume")(resume_command)
app.command("retry")(retry_command)
app.command("rehearse")(rehearse_command)
app.add_typer(keys_app, name="keys")


if __name__ == "__main__":  # `python -m promptctl.main …` runs the CLI too
    app()
