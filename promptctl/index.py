"""`promptctl index DIR --collection NAME`: chunk a folder of .md/.txt files into Qdrant.

Settings come from the environment (``QDRANT_URL`` or ``QDRANT_PATH``,
``EMBEDDING_BASE_URL``, ...), exactly as the service reads them, so the
service finds what was indexed. Re-running on unchanged files writes nothing.
Passages of files outside DIR stay unless ``--prune``; ``--dry-run`` writes nothing.
Sentences screened out as instruction-like are listed per file, for the owner to fix.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from service.errors import ServiceError
from service.retrieval import (
    IndexReport,
    build_embedder,
    index_documents,
    open_qdrant,
    read_documents,
)
from service.settings import Settings

__all__ = ["index_command", "render_file_lines", "render_report", "render_screened_lines"]

_HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def index_command(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Folder of .md and .txt files (searched recursively).",
            exists=True,
            file_okay=False,
            dir_okay=True,
            readable=True,
        ),
    ],
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="Qdrant collection to write into.")
    ],
    prune: Annotated[
        bool,
        typer.Option(
            "--prune/--no-prune",
            help="Also delete the passages of files that are not in DIRECTORY "
            "(by default they are kept).",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what would change; embed and write nothing."),
    ] = False,
) -> None:
    """Chunk, screen, embed and upsert DIRECTORY into COLLECTION (idempotent)."""
    err = Console(stderr=True)
    try:
        settings = Settings()
    except ValidationError as exc:
        err.print(f"[red]error:[/red] invalid settings in the environment:\n{escape(str(exc))}")
        raise typer.Exit(2) from None
    try:
        report = asyncio.run(_index(settings, directory, collection, prune, dry_run, err))
    except ServiceError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    for line in render_screened_lines(report):
        typer.echo(line)
    if dry_run:
        for line in render_file_lines(report):
            typer.echo(line)
    typer.echo(render_report(report))


def _excerpt(sentence: str, limit: int = 100) -> str:
    flat = " ".join(sentence.split())
    return flat if len(flat) <= limit else f"{flat[: limit - 1]}…"


def render_screened_lines(report: IndexReport) -> list[str]:
    """One line per sentence left out as instruction-like, by file (pure)."""
    return [
        f"screened {source}: {flag.rule}: {_excerpt(flag.sentence)!r}"
        for source, flags in sorted(report.screened.items())
        for flag in flags
    ]


def render_file_lines(report: IndexReport) -> list[str]:
    """What a dry run would do to each file's passages; files with no change are left out."""
    lines: list[str] = []
    for change in report.files:
        if change.pruned:
            lines.append(f"would remove {change.removed} passages of {change.source} (--prune)")
        elif change.kept:
            lines.append(f"would keep {change.kept} passages of {change.source} (not in folder)")
        elif change.added or change.updated or change.removed:
            lines.append(
                f"would change {change.source}: {change.added} added, {change.updated} updated, "
                f"{change.removed} removed"
            )
    return lines


def render_report(report: IndexReport) -> str:
    """One line summing up an indexing run (pure)."""
    verb = "Dry run, nothing written: would index" if report.dry_run else "Indexed"
    line = (
        f"{verb} {report.documents} documents into {report.collection!r}: "
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.removed} removed, {report.screened_count} screened."
    )
    others = sum(1 for change in report.files if change.kept)
    if others:
        line += f" {report.kept} passages of {others} other files kept (--prune would remove them)."
    return line


async def _index(
    settings: Settings,
    directory: Path,
    collection: str,
    prune: bool,
    dry_run: bool,
    err: Console,
) -> IndexReport:
    documents = read_documents(directory)
    client = open_qdrant(settings)
    try:
        async with httpx.AsyncClient(timeout=_HTTP_TIMEOUT) as http:
            embedder = build_embedder(settings, http)
            with Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as progress:
                task = progress.add_task("Indexing", total=len(documents))
                return await index_documents(
                    client,
                    embedder,
                    collection,
                    documents,
                    on_progress=lambda done: progress.advance(task, done),
                    prune=prune,
                    dry_run=dry_run,
                )
    finally:
        await client.close()
