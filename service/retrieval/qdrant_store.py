"""The :class:`~service.retrieval.store.VectorStore` over qdrant-client: a server or a folder.

Imported only when such a store is opened (:func:`service.retrieval.vectorstore.open_store`)
or when a caller hands the service an ``AsyncQdrantClient`` (``promptctl index``, tests):
qdrant-client's import is ~1/3 of the service's start-up CPU, and ``QDRANT_PATH=:memory:``
does not need it (:class:`~service.retrieval.store.MemoryStore`).

Client errors become the service's own: :func:`build_store_error` says what a failed call
means (missing collection, unreachable server, anything else).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import (
    ApiException,
    ResponseHandlingException,
    UnexpectedResponse,
)

from service.errors import CollectionMismatchError, RetrievalError, VectorStoreError
from service.retrieval.exact import ExactHit
from service.retrieval.mirror import fetch_top_k
from service.retrieval.store import (
    StoredPayloads,
    VectorStore,
    build_missing_error,
    build_size_error,
)

__all__ = ["STORE_ERRORS", "QdrantStore", "build_store_error"]

_SCROLL_PAGE = 256

#: What client calls raise: ApiException from a server, ValueError from the local store.
STORE_ERRORS: tuple[type[Exception], ...] = (ApiException, ValueError)


def build_store_error(exc: Exception, collection: str) -> RetrievalError:
    """A RetrievalError that says what a failed client call on ``collection`` means (pure)."""
    missing = (isinstance(exc, UnexpectedResponse) and exc.status_code == 404) or (
        isinstance(exc, ValueError) and "not found" in str(exc)
    )
    if missing:
        return build_missing_error(collection)
    if isinstance(exc, ResponseHandlingException):
        return VectorStoreError(f"the Qdrant server cannot be reached: {exc}")
    return RetrievalError(f"the vector store failed on collection {collection!r}: {exc}")


class QdrantStore(VectorStore):
    """A Qdrant server or the embedded store in a folder, through ``client`` (owned here)."""

    def __init__(self, client: AsyncQdrantClient) -> None:
        self.client = client

    async def collection_names(self) -> set[str]:
        """The collections that exist (a round trip to a server)."""
        return {c.name for c in (await self.client.get_collections()).collections}

    async def collection_exists(self, collection: str) -> bool:
        """Whether ``collection`` exists (RetrievalError when the store fails)."""
        try:
            return await self.client.collection_exists(collection)
        except STORE_ERRORS as exc:
            raise build_store_error(exc, collection) from exc

    async def ensure_collection(self, collection: str, dimension: int) -> None:
        """Create ``collection`` (cosine) if missing; CollectionMismatchError on another size."""
        try:
            if not await self.client.collection_exists(collection):
                await self.client.create_collection(
                    collection,
                    vectors_config=models.VectorParams(
                        size=dimension, distance=models.Distance.COSINE
                    ),
                )
                return
            info = await self.client.get_collection(collection)
        except ApiException as exc:
            raise build_store_error(exc, collection) from exc
        vectors = info.config.params.vectors
        if not isinstance(vectors, models.VectorParams):
            raise CollectionMismatchError(
                f"collection {collection!r} uses named vectors; index into a new collection"
            )
        if vectors.size != dimension:
            raise build_size_error(collection, vectors.size, dimension)

    async def fetch_payloads(self, collection: str) -> StoredPayloads:
        """Every stored payload, grouped by its ``source`` (one scroll without vectors)."""
        stored: StoredPayloads = {}
        offset: Any = None
        try:
            while True:
                records, offset = await self.client.scroll(
                    collection,
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=True,
                    with_vectors=False,
                )
                for record in records:
                    payload = dict(record.payload or {})
                    stored.setdefault(str(payload.get("source", "")), {})[str(record.id)] = payload
                if offset is None:
                    return stored
        except ApiException as exc:
            raise build_store_error(exc, collection) from exc

    async def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        payloads: Sequence[Mapping[str, Any]],
    ) -> None:
        """Add or replace points."""
        points = [
            models.PointStruct(id=point_id, vector=list(vector), payload=dict(payload))
            for point_id, vector, payload in zip(ids, vectors, payloads, strict=True)
        ]
        try:
            await self.client.upsert(collection, points=points)
        except ApiException as exc:
            raise build_store_error(exc, collection) from exc

    async def delete(self, collection: str, ids: Sequence[str]) -> None:
        """Remove the points with these ids."""
        selector = models.PointIdsList(points=list[models.ExtendedPointId](ids))
        try:
            await self.client.delete(collection, points_selector=selector)
        except ApiException as exc:
            raise build_store_error(exc, collection) from exc

    async def search(
        self, collection: str, vector: Sequence[float], limit: int, min_score: float
    ) -> list[ExactHit]:
        """The store's search (the embedded store's exact mirror, a server's own index)."""
        try:
            return await fetch_top_k(self.client, collection, vector, limit, min_score)
        except STORE_ERRORS as exc:
            raise build_store_error(exc, collection) from exc

    async def close(self) -> None:
        """Close the client."""
        await self.client.close()
