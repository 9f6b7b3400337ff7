"""``promptctl fake-model``: run the deterministic OpenAI-compatible model server."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

import typer
import uvicorn
from pydantic import ValidationError

from fakemodel.app import FakeModelState, InjectedResetLogFilter, create_fake_model_app
from fakemodel.faults import Faults
from fakemodel.replies import Replies, ReplyMode

__all__ = ["fake_model_command"]

_DEFAULT_MODELS = ["gpt-4o-mini", "gpt-4.1-nano"]
_FAULTS = "Faults (change later with POST /admin/faults)"
#: `Faults` fields whose flag is not simply the field name in kebab case.
_FLAG_NAMES = {"status": "--error-status", "models": "--fault-model"}


def _flag(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "faults"
    name = str(loc[0])
    return _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def _faults_from_flags(options: dict[str, object]) -> Faults:
    """The initial faults; flags left unset keep the `Faults` defaults."""
    try:
        chosen = {k: v for k, v in options.items() if v is not None and v is not False}
        return Faults.model_validate(chosen)
    except ValidationError as exc:
        details = "; ".join(
            f"{_flag(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise typer.BadParameter(details) from exc


def fake_model_command(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9000,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", help="A model to serve (repeatable). Default: gpt-4o-mini, gpt-4.1-nano."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed for error-rate and jitter rolls (reproducible runs).")
    ] = 0,
    access_log: Annotated[
        bool,
        typer.Option(
            help="Log a line per request (off under load: it costs ~10 % of the CPU per request)."
        ),
    ] = True,
    reply: Annotated[
        ReplyMode,
        typer.Option(
            help="How chat answers are made: auto (context answer with a CONTEXT block, "
            "else echo), context, echo (the prompt's input), template (--reply-template)."
        ),
    ] = ReplyMode.AUTO,
    reply_template: Annotated[
        str | None,
        typer.Option(
            help="With --reply template: the answer, with {input}, {first_sentence}, "
            "{user} and {model} filled in."
        ),
    ] = None,
    latency_ms: Annotated[
        float | None,
        typer.Option(help="Delay every affected response by this much.", rich_help_panel=_FAULTS),
    ] = None,
    jitter_ms: Annotated[
        float | None,
        typer.Option(help="Add a random 0..N ms to the delay.", rich_help_panel=_FAULTS),
    ] = None,
    error_status: Annotated[
        int | None,
        typer.Option(help="Answer with this HTTP status (400-599).", rich_help_panel=_FAULTS),
    ] = None,
    error_rate: Annotated[
        float | None,
        typer.Option(
            help="Fraction (0..1) of affected requests that fail. Default 1.",
            rich_help_panel=_FAULTS,
        ),
    ] = None,
    retry_after: Annotated[
        float | None,
        typer.Option(
            help="Send Retry-After (seconds) with --error-status.", rich_help_panel=_FAULTS
        ),
    ] = None,
    retry_after_format: Annotated[
        Literal["seconds", "http-date"] | None,
        typer.Option(help="Retry-After as whole seconds or an HTTP-date.", rich_help_panel=_FAULTS),
    ] = None,
    hang: Annotated[
        bool,
        typer.Option("--hang", help="Never answer affected requests.", rich_help_panel=_FAULTS),
    ] = False,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Send half a response, then drop the connection.",
            rich_help_panel=_FAULTS,
        ),
    ] = False,
    malformed: Annotated[
        bool,
        typer.Option(
            "--malformed", help="Answer 200 with truncated, invalid JSON.", rich_help_panel=_FAULTS
        ),
    ] = False,
    unknown_rate: Annotated[
        float | None,
        typer.Option(
            help="Fraction (0..1) of chat answers left empty (the service counts them unknown).",
            rich_help_panel=_FAULTS,
        ),
    ] = None,
    uncited_rate: Annotated[
        float | None,
        typer.Option(
            help="Fraction (0..1) of chat answers without [n] citations.", rich_help_panel=_FAULTS
        ),
    ] = None,
    refuse_rate: Annotated[
        float | None,
        typer.Option(
            help="Fraction (0..1) of chat answers that refuse (\"I can't help with that "
            'request.").',
            rich_help_panel=_FAULTS,
        ),
    ] = None,
    invalid_json_rate: Annotated[
        float | None,
        typer.Option(
            help="Fraction (0..1) of answers to response_format json_schema requests that are "
            "not JSON (repair conversations are never broken).",
            rich_help_panel=_FAULTS,
        ),
    ] = None,
    off_schema_rate: Annotated[
        float | None,
        typer.Option(
            help="Fraction (0..1) of answers to response_format json_schema requests that "
            "break the schema.",
            rich_help_panel=_FAULTS,
        ),
    ] = None,
    judge_score: Annotated[
        float | None,
        typer.Option(
            help="Score (0..1) every judge request gets, instead of the rubric's.",
            rich_help_panel=_FAULTS,
        ),
    ] = None,
    fault_model: Annotated[
        list[str] | None,
        typer.Option(
            "--fault-model",
            help="Only affect requests for this model (repeatable).",
            rich_help_panel=_FAULTS,
        ),
    ] = None,
) -> None:
    """Serve /v1/chat/completions, /v1/embeddings and /v1/models with deterministic answers.

    Examples: rate-limit gpt-4o-mini, asking clients to retry in 2 s; then a slow,
    flaky provider (800-1200 ms, 10 % of calls answer 503):

        promptctl fake-model --error-status 429 --retry-after 2 --fault-model gpt-4o-mini
        promptctl fake-model --latency-ms 800 --jitter-ms 400 --error-status 503 --error-rate 0.1

    Manage faults while it runs with GET/POST/DELETE /admin/faults, and the reply mode
    with GET/POST/DELETE /admin/replies (see docs/fake-model.md).
    """
    faults = _faults_from_flags(
        {
            "latency_ms": latency_ms,
            "jitter_ms": jitter_ms,
            "status": error_status,
            "error_rate": error_rate,
            "retry_after": retry_after,
            "retry_after_format": retry_after_format,
            "hang": hang,
            "reset": reset,
            "malformed": malformed,
            "unknown_rate": unknown_rate,
            "uncited_rate": uncited_rate,
            "refuse_rate": refuse_rate,
            "invalid_json_rate": invalid_json_rate,
            "off_schema_rate": off_schema_rate,
            "judge_score": judge_score,
            "models": fault_model,
        }
    )
    try:
        replies = Replies(mode=reply, template=reply_template)
    except ValidationError as exc:
        details = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise typer.BadParameter(details, param_hint="--reply/--reply-template") from exc
    state = FakeModelState(
        models=model or list(_DEFAULT_MODELS), faults=faults, seed=seed, replies=replies
    )
    config = uvicorn.Config(
        create_fake_model_app(state),
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=5,
    )
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, InjectedResetLogFilter) for f in server_log.filters):
        server_log.addFilter(InjectedResetLogFilter())
    uvicorn.Server(config).run()
