"""``promptctl rehearse SCENARIO.yaml``: a rollout flight simulator (docs/rehearse.md).

Starts, on 127.0.0.1, the Kubernetes API emulator (a rehearsal stand-in, never a
production API server), the fake model, the real service, a real Prometheus and the real
controller; applies the scenario's PromptVersions, drives simulated traffic and feedback,
and reports what the rollout did. Exit codes: 0 done (every ``expect`` met), 1 an
``expect`` was not met, 2 the scenario or the set-up failed, 130 interrupted.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console

__all__ = ["OutputFormat", "rehearse_command"]

EXIT_UNMET, EXIT_SETUP, EXIT_INTERRUPTED = 1, 2, 130


class OutputFormat(StrEnum):
    """What ``promptctl rehearse`` prints on stdout at the end."""

    TEXT = "text"
    JSON = "json"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"promptctl rehearse: {message}", err=True)
    return typer.Exit(EXIT_SETUP)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops everything the way Ctrl-C does


def _emit(
    result: dict[str, Any],
    samples: list[dict[str, Any]],
    report: Path | None,
    *,
    json_out: bool,
    unmet: list[str],
) -> None:
    """Write the report (if asked) and print the JSON object or the summary."""
    from rehearsal.view import render_summary  # noqa: PLC0415

    if report is not None:
        from rehearsal.report import render_report  # noqa: PLC0415

        try:
            report.write_text(render_report(result, samples), encoding="utf-8")
        except OSError as error:
            raise _fail(f"cannot write the report {report}: {error.strerror}") from None
    if json_out:
        typer.echo(json.dumps(result, sort_keys=False))
    else:
        typer.echo(render_summary(result, unmet))


def rehearse_command(
    scenario: Annotated[Path, typer.Argument(help="The scenario file (docs/rehearse.md).")],
    output: Annotated[
        OutputFormat,
        typer.Option(help="text: a summary; json: one JSON object on stdout (progress on stderr)."),
    ] = OutputFormat.TEXT,
    speed: Annotated[
        float,
        typer.Option(
            min=1.0,
            max=100.0,
            help="Compress time N times: step pauses, analysis interval and window, and the "
            "traffic duration are divided by N (intervals never below 1 s, windows 5 s).",
        ),
    ] = 1.0,
    report: Annotated[
        Path | None,
        typer.Option(help="Write the timeline as a self-contained HTML chart to this file."),
    ] = None,
) -> None:
    """Rehearse a rollout on this machine: real controller, service and Prometheus, a fake
    model and a Kubernetes API emulator, simulated traffic and feedback.

    Example (from a checkout):

        promptctl rehearse examples/rehearsals/healthy.yaml --speed 4
    """
    try:
        from rehearsal.requirements import find_missing_requirements  # noqa: PLC0415
        from rehearsal.scenario import ScenarioError  # noqa: PLC0415
        from rehearsal.scenario_loading import load_scenario  # noqa: PLC0415
        from rehearsal.timeline import assess_expectations  # noqa: PLC0415
        from rehearsal.view import LiveView, PlainView  # noqa: PLC0415
    except ImportError as error:  # e.g. the service's image, which ships no rehearsal/
        raise _fail(
            f"the rehearsal components are not installed ({error.name}): "
            "pip install 'prompt-rollouts[rehearse]'"
        ) from None

    try:
        loaded = load_scenario(scenario)
    except ScenarioError as error:
        raise _fail(str(error)) from None
    missing = find_missing_requirements()
    if missing:
        raise _fail("cannot rehearse: " + "; ".join(missing))
    from rehearsal.run import run_rehearsal  # noqa: PLC0415 - needs the rehearse extra
    from rehearsal.stack import SetupError  # noqa: PLC0415

    json_out = output is OutputFormat.JSON
    live = not json_out and sys.stdout.isatty()
    view: Any = LiveView(Console()) if live else PlainView(sys.stderr if json_out else sys.stdout)
    workdir = Path(tempfile.mkdtemp(prefix="promptctl-rehearse-"))
    previous = signal.signal(signal.SIGTERM, _terminate)
    keep_logs = True
    try:
        rehearsal = run_rehearsal(loaded, speed, view, workdir)
        keep_logs = False
    except KeyboardInterrupt:
        keep_logs = False
        typer.echo("promptctl rehearse: interrupted; everything it started is stopped", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (SetupError, RuntimeError, TimeoutError, OSError) as error:
        raise _fail(f"{error}\n(logs of every piece are in {workdir})") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if isinstance(view, LiveView):
            view.close()
        if not keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
    result = rehearsal.result
    expect = {v: e.to_json() for v, e in loaded.scenario.expect.items()}
    unmet = assess_expectations(expect, result["versions"])
    result["expect"] = {"wanted": expect, "unmet": unmet}
    _emit(result, rehearsal.samples, report, json_out=json_out, unmet=unmet)
    if unmet:
        raise typer.Exit(EXIT_UNMET)
