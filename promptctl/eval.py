"""``promptctl eval``: run an eval set against two versions of a prompt and report regressions.

Every case is asked of both versions, pinned with the request body's ``version``, either
in process (the service built from the environment, ``create_app(Settings())``, its
lifespan run) or against a running service (``--url``). Scoring, comparison and the
report are pure (``promptctl.evaluation``); this module only does the I/O.

Exit codes: 0 the candidate passes; 1 a regression (with ``--fail-on-regression``) or
fewer passes than ``--min-pass-rate`` of the baseline's; 2 a setup or input error (file,
eval set, a version that cannot be served, no service to ask, nothing evaluated).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from promptctl.evaluation import (
    CaseResult,
    EvalCase,
    EvalSet,
    EvalSetError,
    Gate,
    ReportMeta,
    assess_gate,
    assess_servability,
    compare,
    parse_evalset,
    render_report,
    render_verdict,
    score_case,
)
from service.app import create_app
from service.errors import ServiceError
from service.settings import Settings

__all__ = ["EvalInputError", "eval_command", "fetch_versions", "run_evalset"]

IN_PROCESS = "the in-process service (settings from the environment)"


class EvalInputError(Exception):
    """The run cannot start: unknown prompt or versions, or no service to ask."""


@contextlib.asynccontextmanager
async def _open_client(url: str | None, request_timeout: float) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running service at `url`, or of an in-process app with its lifespan."""
    if url is not None:
        async with httpx.AsyncClient(base_url=url, timeout=request_timeout) as client:
            yield client
        return
    try:
        app = create_app(Settings())
    except ValidationError as error:
        raise EvalInputError(f"invalid service settings in the environment: {error}") from error
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(app.router.lifespan_context(app))
        except ServiceError as error:
            # The same sentence `promptctl index` prints (a locked local store, ...).
            raise EvalInputError(
                f"the in-process service cannot start: {error}; or evaluate the running "
                "service instead with --url (e.g. --url http://127.0.0.1:8000)"
            ) from None
        transport = httpx.ASGITransport(app=app)
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=transport, base_url="http://promptctl-eval", timeout=request_timeout
            )
        )
        yield client


async def fetch_versions(client: httpx.AsyncClient, prompt: str) -> dict[str, dict[str, Any]]:
    """The versions of `prompt` the service has loaded (`GET /v1/prompts`), by version."""
    try:
        response = await client.get("/v1/prompts")
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise EvalInputError(f"cannot list prompts at {client.base_url}: {error}") from error
    items: list[dict[str, Any]] = response.json()["items"]
    versions = {str(item["version"]): item for item in items if item["prompt"] == prompt}
    if not versions:
        loaded = ", ".join(sorted({str(item["prompt"]) for item in items})) or "none"
        raise EvalInputError(f"prompt {prompt!r} is not loaded; loaded prompts: {loaded}")
    return versions


async def _ask(
    client: httpx.AsyncClient, prompt: str, case: EvalCase, version: str
) -> dict[str, Any]:
    """The answer body, or a problem body (`status`, `title`, `detail`) for any failure."""
    body: dict[str, Any] = {
        "prompt": prompt,
        "question": case.question,
        "variables": case.variables,
        "version": version,
    }
    if case.user is not None:
        body["user"] = case.user
    try:
        response = await client.post("/v1/answers", json=body)
    except httpx.HTTPError as error:
        return {"status": "no response", "title": type(error).__name__, "detail": str(error)}
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return {"status": response.status_code, "detail": response.text[:200]}
    if response.is_error:
        # A problem body may carry an `outcome` (503 "unavailable"): it is still no answer.
        return {
            "status": response.status_code,
            "title": data.get("title"),
            "detail": data.get("detail"),
        }
    return data


async def run_evalset(
    client: httpx.AsyncClient, evalset: EvalSet, versions: list[str], concurrency: int
) -> dict[str, list[CaseResult]]:
    """Every case on every version, at most `concurrency` requests at once."""
    available = await fetch_versions(client, evalset.prompt)
    missing = [v for v in dict.fromkeys(versions) if v not in available]
    if missing:
        raise EvalInputError(
            f"{evalset.prompt} has no version {', '.join(missing)}; "
            f"loaded versions: {', '.join(available)}"
        )
    invalid = [v for v in dict.fromkeys(versions) if available[v].get("phase") == "Invalid"]
    if invalid:
        raise EvalInputError(
            "; ".join(
                f"{evalset.prompt} {v} cannot be served: it is Invalid "
                f"({available[v].get('message') or 'no reason given'})"
                for v in invalid
            )
        )
    gate = asyncio.Semaphore(concurrency)

    async def run(case: EvalCase, version: str) -> CaseResult:
        async with gate:
            return score_case(case, await _ask(client, evalset.prompt, case, version))

    # Alternate which version asks a case first, so warm-up (caches, lazy loading) is not
    # always paid by the same version and its latency stays comparable.
    order = list(dict.fromkeys(versions))
    jobs = [
        (version, case)
        for index, case in enumerate(evalset.cases)
        for version in (order if index % 2 == 0 else order[::-1])
    ]
    scored = await asyncio.gather(*(run(case, version) for version, case in jobs))
    results: dict[str, list[CaseResult]] = {version: [] for version in order}
    for (version, _), result in zip(jobs, scored, strict=True):
        results[version].append(result)
    problems = [p for v in order if (p := assess_servability(v, results[v])) is not None]
    if problems:
        raise EvalInputError(f"{evalset.prompt}: " + "; ".join(problems))
    return results


async def _run(
    evalset: EvalSet, versions: list[str], url: str | None, request_timeout: float, concurrency: int
) -> dict[str, list[CaseResult]]:
    try:
        async with _open_client(url, request_timeout) as client:
            return await run_evalset(client, evalset, versions, concurrency)
    except httpx.HTTPError as error:
        raise EvalInputError(f"cannot reach the service: {error}") from error


def _fail(err: Console, message: str) -> typer.Exit:
    err.print(f"[red]error[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=2)


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
    min_pass_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Exit 1 when the candidate passes fewer cases than this fraction of the "
            "cases the baseline passes (1.0: at least as many).",
        ),
    ] = 1.0,
    fail_on_regression: Annotated[
        bool,
        typer.Option(
            "--fail-on-regression/--no-fail-on-regression",
            help="Exit 1 when a case passes on the baseline and fails on the candidate.",
        ),
    ] = True,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Requests in flight at once.")
    ] = 4,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for one answer.")] = 60.0,
) -> None:
    """Compare two versions of a prompt on an eval set; report regressions in Markdown.

    Exit codes: 0 the candidate passes; 1 a regression, fewer passes than --min-pass-rate
    of the baseline's, or no case passed; 2 a setup or input error (bad file or eval
    set, a version that cannot be served, no service, nothing could be evaluated).
    """
    err = Console(stderr=True)
    try:
        parsed = parse_evalset(evalset.read_text(encoding="utf-8"))
    except OSError as error:
        raise _fail(err, f"cannot read {evalset}: {error.strerror or error}") from error
    except EvalSetError as error:
        for problem in error.problems:
            err.print(f"[red]error[/red] {escape(f'{evalset}: {problem}')}", soft_wrap=True)
        raise typer.Exit(code=2) from error
    if output is not None and not output.parent.is_dir():
        raise _fail(err, f"cannot write {output}: {output.parent} is not a folder")
    try:
        # In process, the service logs JSON to stdout: keep stdout for the report.
        with contextlib.redirect_stdout(sys.stderr):
            results = asyncio.run(_run(parsed, [baseline, candidate], url, timeout, concurrency))
    except EvalInputError as error:
        raise _fail(err, str(error)) from error
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
    )
    report = render_report(comparison, meta, verdict)
    if output is None:
        typer.echo(report, nl=False)
    else:
        output.write_text(report, encoding="utf-8")
        err.print(f"report written to {escape(str(output))}", soft_wrap=True)
    err.print(escape(render_verdict(comparison, meta, verdict)), soft_wrap=True)
    if not verdict.passed:
        raise typer.Exit(code=1)
