"""The vector store the service indexes into and searches: one interface, two kinds.

:class:`VectorStore` is what indexing, the retriever and readiness call. Two stores:

- :class:`MemoryStore` for ``QDRANT_PATH=:memory:``: the exact in-memory index
  (:class:`~service.retrieval.exact.ExactIndex`, one per collection) *is* the store. An
  in-memory Qdrant is private to the process and gone with it, so nothing else can read
  or write it; keeping a second copy in qdrant-client's local mode bought nothing but its
  import (~1/3 of the service's start-up CPU) and its Python-per-point upserts.
- :class:`~service.retrieval.qdrant_store.QdrantStore` for a Qdrant server (``QDRANT_URL``)
  or the embedded store in a folder (``QDRANT_PATH``), over qdrant-client (imported only
  when one of those is opened, see :func:`service.retrieval.vectorstore.open_store`).

Both raise :class:`~service.errors.RetrievalError` (with the same message) when a
collection is missing, and :class:`~service.errors.CollectionMismatchError` when a
collection holds vectors of another size.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from service.errors import CollectionMismatchError, RetrievalError

if TYPE_CHECKING:
    from service.retrieval.exact import ExactHit, ExactIndex

__all__ = [
    "MemoryStore",
    "StoredPayloads",
    "VectorStore",
    "build_missing_error",
    "build_size_error",
]

#: Every stored payload of a collection, as ``{source: {point_id: payload}}``.
StoredPayloads = dict[str, dict[str, dict[str, Any]]]


def build_missing_error(collection: str) -> RetrievalError:
    """The error for a collection that does not exist (pure)."""
    return RetrievalError(
        f"collection {collection!r} does not exist: index the corpus first "
        f"(promptctl index DIR --collection {collection})"
    )


def build_size_error(collection: str, stored: int, dimension: int) -> CollectionMismatchError:
    """The error for a collection whose vectors have another size than the embedder's (pure)."""
    return CollectionMismatchError(
        f"collection {collection!r} holds {stored}-d vectors but the embedding model "
        f"makes {dimension}-d ones: index into another collection or delete this one"
    )


class VectorStore(abc.ABC):
    """Collections of unit vectors with payloads: what indexing and search need of a store."""

    @abc.abstractmethod
    async def collection_names(self) -> set[str]:
        """The collections that exist (for a server: a round trip, so readiness checks it)."""

    @abc.abstractmethod
    async def collection_exists(self, collection: str) -> bool:
        """Whether ``collection`` exists."""

    @abc.abstractmethod
    async def ensure_collection(self, collection: str, dimension: int) -> None:
        """Create ``collection`` (cosine) if missing; CollectionMismatchError on another size."""

    @abc.abstractmethod
    async def fetch_payloads(self, collection: str) -> StoredPayloads:
        """Every stored payload, grouped by its ``source``."""

    @abc.abstractmethod
    async def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        payloads: Sequence[Mapping[str, Any]],
    ) -> None:
        """Add points, or replace those whose id is present."""

    @abc.abstractmethod
    async def delete(self, collection: str, ids: Sequence[str]) -> None:
        """Remove the points with these ids."""

    @abc.abstractmethod
    async def search(
        self, collection: str, vector: Sequence[float], limit: int, min_score: float
    ) -> list[ExactHit]:
        """Up to ``limit`` points scoring at least ``min_score`` (cosine), best first."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the store's resources."""


def group_by_source(points: Mapping[str, Mapping[str, Any]]) -> StoredPayloads:
    """``{point_id: payload}`` grouped as ``{source: {point_id: payload}}`` (pure)."""
    stored: StoredPayloads = {}
    for point_id, payload in points.items():
        stored.setdefault(str(payload.get("source", "")), {})[point_id] = dict(payload)
    return stored


class MemoryStore(VectorStore):
    """The store for ``QDRANT_PATH=:memory:``: one exact in-memory index per collection.

    numpy (through :mod:`service.retrieval.exact`) is imported when the first collection
    is created: a service whose prompts retrieve nothing never loads it.
    """

    def __init__(self) -> None:
        self._collections: dict[str, ExactIndex] = {}

    async def collection_names(self) -> set[str]:
        """The collections created so far."""
        return set(self._collections)

    async def collection_exists(self, collection: str) -> bool:
        """Whether ``collection`` was created."""
        return collection in self._collections

    async def ensure_collection(self, collection: str, dimension: int) -> None:
        """Create ``collection`` if missing; CollectionMismatchError on another size."""
        index = self._collections.get(collection)
        if index is None:
            # Deferred: numpy is needed only once a collection exists.
            from service.retrieval.exact import ExactIndex  # noqa: PLC0415

            self._collections[collection] = ExactIndex(dimension)
        elif index.dimension != dimension:
            raise build_size_error(collection, index.dimension, dimension)

    async def fetch_payloads(self, collection: str) -> StoredPayloads:
        """Every stored payload, grouped by its ``source``."""
        return group_by_source(self._index(collection).payloads())

    async def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        payloads: Sequence[Mapping[str, Any]],
    ) -> None:
        """Add or replace points (payloads are copied)."""
        self._index(collection).upsert(list(ids), vectors, [dict(p) for p in payloads])

    async def delete(self, collection: str, ids: Sequence[str]) -> None:
        """Remove the points with these ids (absent ids are ignored)."""
        self._index(collection).delete(ids)

    async def search(
        self, collection: str, vector: Sequence[float], limit: int, min_score: float
    ) -> list[ExactHit]:
        """Exact cosine top-``limit`` of the collection."""
        return self._index(collection).search(vector, limit, min_score)

    async def close(self) -> None:
        """Drop every collection."""
        self._collections.clear()

    def _index(self, collection: str) -> ExactIndex:
        index = self._collections.get(collection)
        if index is None:
            raise build_missing_error(collection)
        return index
