"""Index documents into a Qdrant collection, idempotently.

Observe (one scroll of the collection's payloads) → decide (pure, in
:mod:`service.retrieval.index_decisions`, per document) → apply
(embed and upsert what is new, delete what is stale). Re-indexing identical
documents embeds and writes nothing. A document's new passages are written before
its stale ones are deleted, so it is never missing from search. Embedded text is
the title and the passage (``"{title}\\n{text}"``) so that every passage carries
its topic.

Every passage is screened (:mod:`prompting.screening`) before it is embedded:
instruction-like sentences are left out of the stored text and reported per file.
Passages of files that are not in ``documents`` are kept unless ``prune`` is set;
``dry_run`` decides everything and writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ApiException

from prompting.screening import Flag
from service.errors import CollectionMismatchError
from service.retrieval.embeddings import Embedder, fetch_dimension
from service.retrieval.index_decisions import (
    ScreenedChunks,
    SourceChanges,
    build_payload,
    build_screened_chunks,
    decide_changes,
)
from service.retrieval.vectorstore import build_store_error

__all__ = [
    "CollectionMismatchError",
    "FileChanges",
    "IndexReport",
    "ScreenedChunks",
    "SourceChanges",
    "build_payload",
    "build_screened_chunks",
    "decide_changes",
    "index_documents",
]

_SCROLL_PAGE = 256


@dataclass(frozen=True)
class FileChanges:
    """What one run did (or, in a dry run, would do) to the passages of one file.

    ``pruned`` marks a file that is no longer in the folder and lost its passages;
    ``kept`` a file that is not in the folder and kept them (no ``prune``).
    """

    source: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    pruned: bool = False
    kept: int = 0


@dataclass
class IndexReport:
    """What one indexing run changed (or would change, when ``dry_run``).

    ``added``: passages embedded and written; ``updated``: passages re-written
    because their text, metadata, screening or embedding model changed;
    ``unchanged``: passages already present; ``removed``: stale passages deleted;
    ``kept``: passages of files outside this run left in place (no ``prune``);
    ``screened``: the sentences left out of each file as instruction-like.
    """

    collection: str
    added: int = 0
    unchanged: int = 0
    removed: int = 0
    documents: int = 0
    updated: int = 0
    kept: int = 0
    dry_run: bool = False
    files: list[FileChanges] = field(default_factory=list)
    screened: dict[str, tuple[Flag, ...]] = field(default_factory=dict)

    @property
    def screened_count(self) -> int:
        """Sentences left out in all, over every file."""
        return sum(len(flags) for flags in self.screened.values())


async def index_documents(
    client: AsyncQdrantClient,
    embedder: Embedder,
    collection: str,
    documents: Sequence[tuple[str, str]],
    on_progress: Callable[[int], None] | None = None,
    *,
    max_chars: int = 800,
    prune: bool = False,
    dry_run: bool = False,
) -> IndexReport:
    """Make ``collection`` hold the screened passages of ``documents`` (``(source, text)`` pairs).

    Creates the collection (cosine, ``embedder.dimension``) if missing; raises
    CollectionMismatchError if it exists with another vector size. Passages of
    sources not in ``documents`` are kept, unless ``prune`` is set. With ``dry_run``
    nothing is embedded, created or written: the report says what would change.
    ``on_progress(1)`` is called after each document.
    """
    if len({source for source, _ in documents}) != len(documents):
        raise ValueError("documents must have distinct sources")
    report = IndexReport(collection=collection, documents=len(documents), dry_run=dry_run)
    try:
        if dry_run:
            exists = await client.collection_exists(collection)
            stored = await _scroll_payloads(client, collection) if exists else {}
        else:
            await _ensure_collection(client, collection, await fetch_dimension(embedder))
            stored = await _scroll_payloads(client, collection)
        for source, text in documents:
            screened = build_screened_chunks(source, text, max_chars)
            if screened.flags:
                report.screened[source] = screened.flags
            changes = decide_changes(
                screened.chunks, stored.pop(source, {}), embedder.model_id, screened.screened
            )
            if not dry_run:
                await _apply(client, embedder, collection, changes, screened.screened)
            report.files.append(
                FileChanges(
                    source,
                    added=len(changes.to_add),
                    updated=len(changes.to_update),
                    unchanged=changes.unchanged,
                    removed=len(changes.to_remove),
                )
            )
            if on_progress is not None:
                on_progress(1)
        report.files += await _settle_others(client, collection, stored, prune, dry_run)
    except ApiException as exc:
        raise build_store_error(exc, collection) from exc
    for change in report.files:
        report.added += change.added
        report.updated += change.updated
        report.unchanged += change.unchanged
        report.removed += change.removed
        report.kept += change.kept
    return report


async def _settle_others(
    client: AsyncQdrantClient,
    collection: str,
    others: Mapping[str, Mapping[str, Any]],
    prune: bool,
    dry_run: bool,
) -> list[FileChanges]:
    """Prune (or keep) the passages of sources that were not indexed in this run."""
    changes: list[FileChanges] = []
    for source in sorted(others):
        points = sorted(others[source])
        if not prune:
            changes.append(FileChanges(source, kept=len(points)))
            continue
        if not dry_run:
            await _delete(client, collection, points)
        changes.append(FileChanges(source, removed=len(points), pruned=True))
    return changes


async def _ensure_collection(client: AsyncQdrantClient, collection: str, dimension: int) -> None:
    if not await client.collection_exists(collection):
        await client.create_collection(
            collection,
            vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
        )
        return
    info = await client.get_collection(collection)
    vectors = info.config.params.vectors
    if not isinstance(vectors, models.VectorParams):
        raise CollectionMismatchError(
            f"collection {collection!r} uses named vectors; index into a new collection"
        )
    if vectors.size != dimension:
        raise CollectionMismatchError(
            f"collection {collection!r} holds {vectors.size}-d vectors but the embedding model "
            f"makes {dimension}-d ones: index into another collection or delete this one"
        )


async def _scroll_payloads(
    client: AsyncQdrantClient, collection: str
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every stored payload, as ``{source: {point_id: payload}}``."""
    stored: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    offset: Any = None
    while True:
        records, offset = await client.scroll(
            collection, limit=_SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=False
        )
        for record in records:
            payload = dict(record.payload or {})
            stored[str(payload.get("source", ""))][str(record.id)] = payload
        if offset is None:
            return stored


async def _apply(
    client: AsyncQdrantClient,
    embedder: Embedder,
    collection: str,
    changes: SourceChanges,
    screened: Mapping[str, int],
) -> None:
    chunks = [*changes.to_add, *changes.to_update]
    if chunks:
        vectors = await embedder.embed([f"{chunk.title}\n{chunk.text}" for chunk in chunks])
        points = [
            models.PointStruct(
                id=chunk.point_id,
                vector=vector,
                payload=build_payload(chunk, embedder.model_id, screened.get(chunk.point_id, 0)),
            )
            for chunk, vector in zip(chunks, vectors, strict=True)
        ]
        await client.upsert(collection, points=points)
    await _delete(client, collection, changes.to_remove)


async def _delete(client: AsyncQdrantClient, collection: str, point_ids: list[str]) -> None:
    if point_ids:
        ids: list[models.ExtendedPointId] = list(point_ids)
        await client.delete(collection, points_selector=models.PointIdsList(points=ids))
