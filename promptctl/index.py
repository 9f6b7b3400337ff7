"""`promptctl index DIR --collection NAME`: chunk a folder of .md/.txt files into Qdrant.

Settings come from the environment (``QDRANT_URL`` or ``QDRANT_PATH``,
``EMBEDDING_BASE_URL``, ...), exactly as the service reads them, so the
service finds what was indexed. Re-running on unchanged files writes nothing.
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

from service.chunking import read_documents
from service.embeddings import build_embedder
from service.errors import ServiceError
from service.indexing import IndexReport, index_documents
from service.settings import Settings
from service.vectorstore import open_qdrant

__all__ = ["index_command", "render_report"]

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
            help="Delete passages of files that are no longer in DIRECTORY.",
        ),
    ] = True,
) -> None:
    """Chunk, embed and upsert DIRECTORY into COLLECTION (idempotent)."""
    err = Console(stderr=True)
    try:
        settings = Settings()
    except ValidationError as exc:
        err.print(f"[red]error:[/red] invalid settings in the environment:\n{escape(str(exc))}")
        raise typer.Exit(2) from None
    try:
        report = asyncio.run(_index(settings, directory, collection, prune, err))
    except ServiceError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    typer.echo(render_report(report))


def render_report(report: IndexReport) -> str:
    """One line summing up an indexing run (pure)."""
    return (
        f"Indexed {report.documents} documents into {report.collection!r}: "
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.removed} removed."
    )


async def _index(
    settings: Settings, directory: Path, collection: str, prune: bool, err: Console
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
                )
    finally:
        await client.close()
