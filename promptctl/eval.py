"""``promptctl eval``: run an eval set against two versions of a prompt and gate the candidate.

The I/O shell around ``promptctl.evals``: read the eval set, run it (``runner``), score
and judge it (pure), write the reports asked for, exit with the verdict.

Exit codes: 0 the candidate passes; 1 a regression (with ``--fail-on-regression``),
fewer passes than ``--min-pass-rate`` of the baseline's, a case without an answer, or
no case passed; 2 a setup or input error (file, eval set, a version that cannot be
served, no service to ask, no judge, nothing evaluated).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from promptctl.evals.reports.document import ReportError, build_document, parse_baseline
from promptctl.evals.reports.html import render_html
from promptctl.evals.reports.junit import render_junit
from promptctl.evals.runner import EvalInputError, open_client, open_measurer, run_evalset
from promptctl.evals.specdiff import SpecError, build_spec_diff, find_version, render_spec_diff
from prompting.evals.comparison import Comparison, compare
from prompting.evals.evalset import EvalSet, EvalSetError, parse_evalset
from prompting.evals.gates import Gate, Verdict, assess_gate
from prompting.evals.markdown import render_report, render_verdict
from prompting.evals.meta import ReportMeta
from prompting.evals.scoring import CaseResult

__all__ = ["eval_command"]

IN_PROCESS = "the in-process service (settings from the environment)"


async def _run(
    evalset: EvalSet,
    versions: list[str],
    url: str | None,
    options: dict[str, float | int],
    judge_model: str | None,
    judge_url: str | None,
) -> dict[str, list[CaseResult]]:
    timeout = float(options["timeout"])
    async with (
        open_measurer(evalset, judge_model, judge_url, timeout) as measurer,
        open_client(url, timeout) as client,
    ):
        return await run_evalset(
            client,
            evalset,
            versions,
            measurer=measurer,
            concurrency=int(options["concurrency"]),
            repeat=int(options["repeat"]),
            quorum=float(options["quorum"]),
        )


def _fail(err: Console, message: str) -> typer.Exit:
    err.print(f"[red]error[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=2)


def _spec_diff(folder: Path, prompt: str, baseline: str, candidate: str) -> str | None:
    try:
        old, new = find_version(folder, prompt, baseline), find_version(folder, prompt, candidate)
    except SpecError:
        return None
    return render_spec_diff(build_spec_diff(old, new))


def _read_evalset(err: Console, path: Path) -> EvalSet:
    try:
        return parse_evalset(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise _fail(err, f"cannot read {path}: {error.strerror or error}") from error
    except EvalSetError as error:
        for problem in error.problems:
            err.print(f"[red]error[/red] {escape(f'{path}: {problem}')}", soft_wrap=True)
        raise typer.Exit(code=2) from error


def _read_baseline(err: Console, path: Path, version: str, evalset: EvalSet) -> list[CaseResult]:
    try:
        stored, digest = parse_baseline(path.read_text(encoding="utf-8"), version, evalset.prompt)
    except OSError as error:
        raise _fail(err, f"cannot read {path}: {error.strerror or error}") from None
    except ReportError as error:
        raise _fail(err, f"{path}: {error}") from None
    if digest and digest != evalset.digest():
        err.print(
            f"note: {escape(str(path))} was made from another version of the eval set; "
            "cases it lacks are reported as new",
            soft_wrap=True,
        )
    return stored


def _write_reports(
    err: Console,
    results: dict[str, list[CaseResult]],
    comparison: Comparison,
    verdict: Verdict,
    meta: ReportMeta,
    files: dict[str, Path | None],
) -> str:
    """Write every report asked for; return the Markdown report."""
    report = render_report(comparison, meta, verdict)
    renderers: dict[str, Callable[[], str]] = {
        "markdown": lambda: report,
        "comment": lambda: report,
        "junit": lambda: render_junit(results, meta),
        "json": lambda: (
            json.dumps(
                build_document(results, comparison, verdict, meta), indent=2, ensure_ascii=False
            )
            + "\n"
        ),
        "html": lambda: render_html(comparison, meta, verdict),
    }
    for kind, target in files.items():
        if target is not None:
            target.write_text(renderers[kind](), encoding="utf-8")
            err.print(f"report written to {escape(str(target))}", soft_wrap=True)
    return report


def eval_command(
    evalset: Annotated[Path, typer.Argument(help="An eval set (YAML), see docs/evals.md.")],
    baseline: Annotated[str, typer.Option(help="The version to compare against, e.g. 1.0.0.")],
    candidate: Annotated[str, typer.Option(help="The version under review, e.g. 1.1.0.")],
    url: Annotated[
        str | None,
        typer.Option(help="Base URL of a running service; default: run the service in process."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the Markdown report here; default: stdout."),
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option(help="Write the Markdown report (the PR comment) here.")
    ] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here.")] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the machine-readable report here.")
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Write the self-contained HTML change-impact report here.")
    ] = None,
    baseline_report: Annotated[
        Path | None,
        typer.Option(
            help="A --json report of an earlier run: take the baseline's results from it "
            "instead of running the baseline version."
        ),
    ] = None,
    min_pass_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Exit 1 when the candidate passes fewer cases than this fraction of the "
            "cases the baseline passes (weighted; 1.0: at least as many).",
        ),
    ] = 1.0,
    fail_on_regression: Annotated[
        bool,
        typer.Option(
            "--fail-on-regression/--no-fail-on-regression",
            help="Exit 1 when a case passes on the baseline and fails on the candidate.",
        ),
    ] = True,
    repeat: Annotated[
        int, typer.Option(min=1, max=50, help="Run each case this many times per version.")
    ] = 1,
    pass_quorum: Annotated[
        float,
        typer.Option(
            min=0.01, max=1.0, help="A case passes when at least this fraction of its runs pass."
        ),
    ] = 1.0,
    judge_model: Annotated[
        str | None, typer.Option(help="The model that grades llm_rubric checks.")
    ] = None,
    judge_url: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible base URL of the judge; default: MODEL_BASE_URL."),
    ] = None,
    prompts_dir: Annotated[
        Path,
        typer.Option(
            envvar="PROMPTS_DIR", help="Manifests for the spec diff in the HTML/Markdown report."
        ),
    ] = Path("prompts"),
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Requests in flight at once.")
    ] = 4,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for one answer.")] = 60.0,
) -> None:
    """Compare two versions of a prompt on an eval set; gate the candidate; write reports.

    Exit codes: 0 the candidate passes; 1 a regression, fewer passes than --min-pass-rate
    of the baseline's, a case without an answer, or no case passed; 2 a setup or input
    error (bad file or eval set, a version that cannot be served, no service, no judge,
    nothing could be evaluated).
    """
    err = Console(stderr=True)
    parsed = _read_evalset(err, evalset)
    targets = [p for p in (output, markdown, junit, json_file, html) if p is not None]
    for target in targets:
        if not target.parent.is_dir():
            raise _fail(err, f"cannot write {target}: {target.parent} is not a folder")
    stored = None
    if baseline_report is not None:
        stored = _read_baseline(err, baseline_report, baseline, parsed)
    versions = [candidate] if stored is not None else [baseline, candidate]
    options: dict[str, float | int] = {
        "timeout": timeout,
        "concurrency": concurrency,
        "repeat": repeat,
        "quorum": pass_quorum,
    }
    try:
        with contextlib.redirect_stdout(sys.stderr):
            results = asyncio.run(_run(parsed, versions, url, options, judge_model, judge_url))
    except EvalInputError as error:
        raise _fail(err, str(error)) from error
    if stored is not None:
        # A stored run of the candidate's own version is labelled apart from the new run.
        baseline = f"{baseline} (stored)" if baseline == candidate else baseline
        results = {baseline: stored, **results}
    comparison = compare(results[baseline], results[candidate])
    verdict = assess_gate(
        comparison, Gate(min_pass_rate=min_pass_rate, fail_on_regression=fail_on_regression)
    )
    meta = ReportMeta(
        prompt=parsed.prompt,
        evalset=str(evalset),
        baseline=baseline,
        candidate=candidate,
        target=url or IN_PROCESS,
        repeat=repeat,
        pass_quorum=pass_quorum,
        baseline_report=str(baseline_report) if baseline_report else None,
        evalset_digest=parsed.digest(),
        spec_diff=_spec_diff(prompts_dir, parsed.prompt, baseline, candidate),
    )
    files = {"markdown": output, "comment": markdown, "junit": junit, "json": json_file}
    report = _write_reports(err, results, comparison, verdict, meta, files | {"html": html})
    if output is None and markdown is None:
        typer.echo(report, nl=False)
    err.print(escape(render_verdict(comparison, meta, verdict)), soft_wrap=True)
    if not verdict.passed:
        raise typer.Exit(code=verdict.exit_code)
