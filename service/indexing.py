"""Index documents into a Qdrant collection, idempotently.

Observe (one scroll of the collection's payloads) → decide (pure
:func:`decide_changes` per document) → apply (embed and upsert what is new,
delete what is stale). Re-indexing identical documents embeds and writes
nothing. A document's new passages are written before its stale ones are
deleted, so it is never missing from search. Embedded text is the title and the
passage (``"{title}\\n{text}"``) so that every passage carries its topic.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ApiException

from service.chunking import Chunk, build_chunks
from service.embeddings import Embedder, fetch_dimension
from service.errors import CollectionMismatchError
from service.vectorstore import build_store_error

__all__ = [
    "CollectionMismatchError",
    "IndexReport",
    "SourceChanges",
    "build_payload",
    "decide_changes",
    "index_documents",
]

_SCROLL_PAGE = 256


@dataclass
class IndexReport:
    """What one indexing run changed.

    ``added``: passages embedded and written; ``updated``: passages re-written
    because their metadata or embedding model changed; ``unchanged``: passages
    already present; ``removed``: stale passages deleted.
    """

    collection: str
    added: int = 0
    unchanged: int = 0
    removed: int = 0
    documents: int = 0
    updated: int = 0


@dataclass(frozen=True)
class SourceChanges:
    """The writes one document needs."""

    to_add: list[Chunk]
    to_update: list[Chunk]
    unchanged: int
    to_remove: list[str]


def build_payload(chunk: Chunk, model_id: str) -> dict[str, Any]:
    """The payload stored with a chunk's vector (pure)."""
    return {
        "passage_id": chunk.passage_id,
        "source": chunk.source,
        "title": chunk.title,
        "text": chunk.text,
        "content_hash": chunk.content_hash,
        "embedding_model": model_id,
    }


def decide_changes(
    chunks: Sequence[Chunk], existing: Mapping[str, Mapping[str, Any]], model_id: str
) -> SourceChanges:
    """Compare a document's chunks with its stored payloads by point id (pure)."""
    to_add: list[Chunk] = []
    to_update: list[Chunk] = []
    unchanged = 0
    for chunk in chunks:
        stored = existing.get(chunk.point_id)
        if stored is None:
            to_add.append(chunk)
        elif stored != build_payload(chunk, model_id):
            to_update.append(chunk)
        else:
            unchanged += 1
    wanted = {chunk.point_id for chunk in chunks}
    to_remove = sorted(point_id for point_id in existing if point_id not in wanted)
    return SourceChanges(to_add, to_update, unchanged, to_remove)


async def index_documents(
    client: AsyncQdrantClient,
    embedder: Embedder,
    collection: str,
    documents: Sequence[tuple[str, str]],
    on_progress: Callable[[int], None] | None = None,
    *,
    max_chars: int = 800,
    prune: bool = True,
) -> IndexReport:
    """Make ``collection`` hold exactly the passages of ``documents`` (``(source, text)`` pairs).

    Creates the collection (cosine, ``embedder.dimension``) if missing; raises
    CollectionMismatchError if it exists with another vector size. With ``prune``
    (the default) sources no longer in ``documents`` lose their passages too.
    ``on_progress(1)`` is called after each document is written.
    """
    if len({source for source, _ in documents}) != len(documents):
        raise ValueError("documents must have distinct sources")
    dimension = await fetch_dimension(embedder)
    report = IndexReport(collection=collection, documents=len(documents))
    try:
        await _ensure_collection(client, collection, dimension)
        stored = await _scroll_payloads(client, collection)
        for source, text in documents:
            changes = decide_changes(
                build_chunks(source, text, max_chars), stored.pop(source, {}), embedder.model_id
            )
            await _apply(client, embedder, collection, changes)
            report.added += len(changes.to_add)
            report.updated += len(changes.to_update)
            report.unchanged += changes.unchanged
            report.removed += len(changes.to_remove)
            if on_progress is not None:
                on_progress(1)
        if prune:
            leftovers = sorted(point_id for points in stored.values() for point_id in points)
            await _delete(client, collection, leftovers)
            report.removed += len(leftovers)
    except ApiException as exc:
        raise build_store_error(exc, collection) from exc
    return report


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
    client: AsyncQdrantClient, embedder: Embedder, collection: str, changes: SourceChanges
) -> None:
    chunks = [*changes.to_add, *changes.to_update]
    if chunks:
        vectors = await embedder.embed([f"{chunk.title}\n{chunk.text}" for chunk in chunks])
        points = [
            models.PointStruct(
                id=chunk.point_id, vector=vector, payload=build_payload(chunk, embedder.model_id)
            )
            for chunk, vector in zip(chunks, vectors, strict=True)
        ]
        await client.upsert(collection, points=points)
    await _delete(client, collection, changes.to_remove)


async def _delete(client: AsyncQdrantClient, collection: str, point_ids: list[str]) -> None:
    if point_ids:
        ids: list[models.ExtendedPointId] = list(point_ids)
        await client.delete(collection, points_selector=models.PointIdsList(points=ids))
