"""The embedded Qdrant store with an exact in-memory search in front of it.

:class:`MirroredQdrant` is an :class:`~qdrant_client.AsyncQdrantClient` for the embedded
local mode (``QDRANT_PATH``, ``:memory:``) that keeps, per collection, an
:class:`~service.retrieval.exact.ExactIndex` (numpy matrix of unit vectors) and answers
searches from it: the local mode's own search runs in Python per point (~10 ms at
10,000 passages, ~100 ms at 100,000), the matrix product well under 1 ms at 10,000.
The store stays the source of truth: a collection's mirror is loaded from it (one scroll
with vectors) on its first search, and every write through this client keeps it in
sync: ``upsert`` of points and ``delete`` by ids are applied to the mirror, any other
write (payload or vector updates, batches, uploads, collection changes) drops the
mirror so the next search reloads it. No other process can write the embedded store
while this one holds it (its folder lock), so nothing changes behind the mirror's back.

The service opens it for a ``QDRANT_PATH`` folder; for ``:memory:`` it needs no local mode at
all (:class:`~service.retrieval.store.MemoryStore`), while ``open_qdrant`` callers
(``promptctl index``, the bench) still get this client there.

A Qdrant server (``QDRANT_URL``) keeps the plain client and its own HNSW search.
:func:`fetch_top_k` is the one search call for both.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Sequence
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from service.retrieval.exact import ExactHit, ExactIndex

__all__ = ["MirroredQdrant", "fetch_top_k", "point_key"]

_PAGE = 1024
#: Writes that the mirror cannot apply point by point: they drop the collection's mirror.
_DROPPING = (
    "batch_update_points",
    "clear_payload",
    "create_collection",
    "delete_collection",
    "delete_payload",
    "delete_vectors",
    "overwrite_payload",
    "recreate_collection",
    "set_payload",
    "update_vectors",
    "upload_collection",
    "upload_points",
)


def point_key(point_id: object) -> str:
    """A point id as the store reports it: UUIDs in canonical form, integers as digits."""
    if isinstance(point_id, str):
        try:
            return str(uuid.UUID(point_id))
        except ValueError:
            return point_id
    return str(point_id)


class MirroredQdrant(AsyncQdrantClient):
    """The embedded store's client, searching an exact in-memory copy of each collection."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._mirrors: dict[str, ExactIndex] = {}
        #: Bumped on every write to a collection: a load that raced a write is not kept.
        self._generations: dict[str, int] = {}

    def mirrored(self, collection: str) -> ExactIndex | None:
        """The collection's loaded mirror, if any (for tests and the bench)."""
        return self._mirrors.get(collection)

    async def search_exact(
        self, collection: str, vector: Sequence[float], limit: int, min_score: float
    ) -> list[ExactHit]:
        """Up to ``limit`` points scoring at least ``min_score``, best first, from the mirror.

        Raises what the store raises when the collection is missing (ValueError).
        """
        index = self._mirrors.get(collection)
        if index is None:
            index = await self._load(collection)
        if index is None:  # named vectors: not mirrored, the store searches
            return await _query_store(self, collection, vector, limit, min_score)
        return index.search(vector, limit, min_score)

    async def upsert(self, *args: Any, **kwargs: Any) -> models.UpdateResult:
        """The store's upsert; the points are applied to the collection's mirror too."""
        collection, points = _arguments(args, kwargs, "points")
        self._bump(collection)
        result = await super().upsert(*args, **kwargs)
        index = self._mirrors.get(collection)
        if index is not None and not _apply_upsert(index, points):
            self._drop(collection)
        return result

    async def delete(self, *args: Any, **kwargs: Any) -> models.UpdateResult:
        """The store's delete; points deleted by id leave the mirror too."""
        collection, selector = _arguments(args, kwargs, "points_selector")
        self._bump(collection)
        result = await super().delete(*args, **kwargs)
        index = self._mirrors.get(collection)
        if index is not None:
            ids = selector.points if isinstance(selector, models.PointIdsList) else selector
            if isinstance(ids, list):
                index.delete(point_key(i) for i in ids)
            else:  # a filter: which points it matched is the store's business
                self._drop(collection)
        return result

    async def _load(self, collection: str) -> ExactIndex | None:
        generation = self._generations.get(collection, 0)
        info = await self.get_collection(collection)
        params = info.config.params.vectors
        if not isinstance(params, models.VectorParams):
            return None
        index = ExactIndex(params.size)
        offset: Any = None
        while True:
            records, offset = await self.scroll(
                collection, limit=_PAGE, offset=offset, with_payload=True, with_vectors=True
            )
            index.upsert(
                [point_key(r.id) for r in records],
                [r.vector for r in records],  # type: ignore[misc]
                [dict(r.payload or {}) for r in records],
            )
            if offset is None:
                break
        if self._generations.get(collection, 0) == generation:
            self._mirrors[collection] = index
        return index

    def _bump(self, collection: str) -> None:
        self._generations[collection] = self._generations.get(collection, 0) + 1

    def _drop(self, collection: str) -> None:
        self._bump(collection)
        self._mirrors.pop(collection, None)


def _arguments(args: tuple[Any, ...], kwargs: dict[str, Any], second: str) -> tuple[str, Any]:
    collection = args[0] if args else kwargs["collection_name"]
    value = args[1] if len(args) > 1 else kwargs.get(second)
    return str(collection), value


def _apply_upsert(index: ExactIndex, points: Any) -> bool:
    """Apply a list of PointStructs with plain vectors; False for anything else (drop)."""
    if not isinstance(points, list) or not all(
        isinstance(p, models.PointStruct) and isinstance(p.vector, list) for p in points
    ):
        return False
    index.upsert(
        [point_key(p.id) for p in points],
        [p.vector for p in points],
        [dict(p.payload or {}) for p in points],
    )
    return True


def _dropping(name: str) -> Any:
    original = getattr(AsyncQdrantClient, name)

    async def write(self: MirroredQdrant, *args: Any, **kwargs: Any) -> Any:
        collection, _ = _arguments(args, kwargs, "")
        self._drop(collection)
        try:
            return await original(self, *args, **kwargs)
        finally:
            self._drop(collection)

    def write_now(self: MirroredQdrant, *args: Any, **kwargs: Any) -> Any:
        # upload_points and upload_collection are plain methods on the async client.
        collection, _ = _arguments(args, kwargs, "")
        self._drop(collection)
        try:
            return original(self, *args, **kwargs)
        finally:
            self._drop(collection)

    if not inspect.iscoroutinefunction(original):
        write = write_now
    write.__name__ = name
    write.__doc__ = f"The store's {name}; the collection's mirror is dropped (reloaded later)."
    return write


for _name in _DROPPING:
    setattr(MirroredQdrant, _name, _dropping(_name))


async def _query_store(
    client: AsyncQdrantClient,
    collection: str,
    vector: Sequence[float],
    limit: int,
    min_score: float,
) -> list[ExactHit]:
    response = await client.query_points(
        collection, query=list(vector), limit=limit, score_threshold=min_score, with_payload=True
    )
    return [
        ExactHit(point_key(p.id), float(p.score), p.payload or {})
        for p in response.points
        if p.score >= min_score
    ]


async def fetch_top_k(
    client: AsyncQdrantClient,
    collection: str,
    vector: Sequence[float],
    limit: int,
    min_score: float,
) -> list[ExactHit]:
    """The ``limit`` best points scoring at least ``min_score``: from the embedded store's
    mirror when ``client`` is a :class:`MirroredQdrant`, else from the store's own search."""
    if isinstance(client, MirroredQdrant):
        return await client.search_exact(collection, vector, limit, min_score)
    return await _query_store(client, collection, vector, limit, min_score)
