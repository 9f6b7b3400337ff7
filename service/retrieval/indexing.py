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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
from service.retrieval.store import VectorStore
from service.retrieval.vectorstore import as_store

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

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
    client: VectorStore | AsyncQdrantClient,
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

    ``client`` is a :class:`~service.retrieval.store.VectorStore` or a qdrant-client.
    Creates the collection (cosine, ``embedder.dimension``) if missing; raises
    CollectionMismatchError if it exists with another vector size, RetrievalError when the
    store fails. Passages of
    sources not in ``documents`` are kept, unless ``prune`` is set. With ``dry_run``
    nothing is embedded, created or written: the report says what would change.
    ``on_progress(1)`` is called after each document.
    """
    if len({source for source, _ in documents}) != len(documents):
        raise ValueError("documents must have distinct sources")
    report = IndexReport(collection=collection, documents=len(documents), dry_run=dry_run)
    store = as_store(client)
    if dry_run:
        exists = await store.collection_exists(collection)
        stored = await store.fetch_payloads(collection) if exists else {}
    else:
        await store.ensure_collection(collection, await fetch_dimension(embedder))
        stored = await store.fetch_payloads(collection)
    for source, text in documents:
        screened = build_screened_chunks(source, text, max_chars)
        if screened.flags:
            report.screened[source] = screened.flags
        changes = decide_changes(
            screened.chunks, stored.pop(source, {}), embedder.model_id, screened.screened
        )
        if not dry_run:
            await _apply(store, embedder, collection, changes, screened.screened)
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
    report.files += await _settle_others(store, collection, stored, prune, dry_run)
    for change in report.files:
        report.added += change.added
        report.updated += change.updated
        report.unchanged += change.unchanged
        report.removed += change.removed
        report.kept += change.kept
    return report


async def _settle_others(
    store: VectorStore,
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
            await store.delete(collection, points)
        changes.append(FileChanges(source, removed=len(points), pruned=True))
    return changes


async def _apply(
    store: VectorStore,
    embedder: Embedder,
    collection: str,
    changes: SourceChanges,
    screened: Mapping[str, int],
) -> None:
    chunks = [*changes.to_add, *changes.to_update]
    if chunks:
        vectors = await embedder.embed([f"{chunk.title}\n{chunk.text}" for chunk in chunks])
        await store.upsert(
            collection,
            [chunk.point_id for chunk in chunks],
            vectors,
            [
                build_payload(chunk, embedder.model_id, screened.get(chunk.point_id, 0))
                for chunk in chunks
            ],
        )
    if changes.to_remove:
        await store.delete(collection, changes.to_remove)
