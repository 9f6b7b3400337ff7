"""MemoryStore (QDRANT_PATH=:memory:) against QdrantStore over the real embedded Qdrant:
the same indexing reports, payloads, search results and errors for the same calls."""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator, Sequence

import pytest
import pytest_asyncio
from qdrant_client import AsyncQdrantClient

from service.errors import CollectionMismatchError, RetrievalError
from service.retrieval.indexing import index_documents
from service.retrieval.qdrant_store import QdrantStore
from service.retrieval.search import Retriever
from service.retrieval.store import MemoryStore, VectorStore
from service.retrieval.vectorstore import open_store
from service.settings import Settings

pytestmark = pytest.mark.asyncio

DIM = 16
DOCS = [
    ("refunds.md", "# Refunds\n\n" + "Physical goods can be returned for 30 days. " * 8),
    ("shipping.md", "# Shipping\n\nParcels ship in two days.\n\nPO boxes are fine."),
    ("privacy.md", "# Privacy\n\nWe delete your data on request within 30 days."),
]


class HashEmbedder:
    """A deterministic embedder: word hashes into 16 dimensions, L2-normalised."""

    model_id = "hash-16"
    dimension = DIM

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = [0.0] * DIM
            for word in text.lower().split():
                vector[hashlib.sha256(word.encode()).digest()[0] % DIM] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors


@pytest_asyncio.fixture(params=["memory", "qdrant"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[VectorStore]:
    """Each kind of store, empty."""
    built: VectorStore = (
        MemoryStore()
        if request.param == "memory"
        else QdrantStore(AsyncQdrantClient(location=":memory:"))
    )
    yield built
    await built.close()


async def test_open_store_picks_the_memory_store_only_for_memory() -> None:
    assert isinstance(open_store(Settings(qdrant_path=":memory:", qdrant_url=None)), MemoryStore)


async def test_indexing_reports_and_payloads_are_the_same_in_both_stores() -> None:
    memory, qdrant = MemoryStore(), QdrantStore(AsyncQdrantClient(location=":memory:"))
    try:
        for docs in (DOCS, DOCS[1:], [(DOCS[0][0], DOCS[0][1] + " Changed.")]):
            reports = [
                await index_documents(s, HashEmbedder(), "c", docs, prune=True)
                for s in (memory, qdrant)
            ]
            assert reports[0] == reports[1]
            assert await memory.fetch_payloads("c") == await qdrant.fetch_payloads("c")
        for question in ("refund physical goods", "ship parcels", "delete data"):
            vector = (await HashEmbedder().embed([question]))[0]
            hits = [await s.search("c", vector, 3, -1.0) for s in (memory, qdrant)]
            assert [h.id for h in hits[0]] == [h.id for h in hits[1]]
            assert [h.score for h in hits[0]] == pytest.approx([h.score for h in hits[1]], abs=1e-5)
            assert [h.payload for h in hits[0]] == [h.payload for h in hits[1]]
    finally:
        await qdrant.close()


async def test_a_store_indexes_then_retrieves(store: VectorStore) -> None:
    assert await store.collection_names() == set()
    report = await index_documents(store, HashEmbedder(), "c", DOCS)
    assert report.added > 0
    assert await store.collection_names() == {"c"}
    again = await index_documents(store, HashEmbedder(), "c", DOCS)
    assert (again.added, again.updated, again.unchanged) == (0, 0, report.added)
    passages = await Retriever(store, HashEmbedder()).retrieve("c", "Parcels ship in", 1, 0.1)
    assert [p.source for p in passages] == ["shipping.md"]


async def test_a_missing_collection_is_the_same_retrieval_error(store: VectorStore) -> None:
    retriever = Retriever(store, HashEmbedder())
    assert not await retriever.collection_exists("nope")
    with pytest.raises(RetrievalError, match=r"collection 'nope' does not exist.*promptctl index"):
        await retriever.retrieve("nope", "anything", 3, 0.0)


async def test_another_vector_size_is_refused(store: VectorStore) -> None:
    await store.ensure_collection("c", DIM)
    await store.ensure_collection("c", DIM)  # the same size again is fine
    with pytest.raises(CollectionMismatchError, match="holds 16-d vectors"):
        await store.ensure_collection("c", 8)


async def test_deleted_points_leave_the_search(store: VectorStore) -> None:
    await index_documents(store, HashEmbedder(), "c", DOCS)
    payloads = await store.fetch_payloads("c")
    shipping = sorted(payloads["shipping.md"])
    await store.delete("c", shipping)
    assert "shipping.md" not in await store.fetch_payloads("c")
    vector = (await HashEmbedder().embed(["Parcels ship in two days."]))[0]
    assert all(hit.id not in shipping for hit in await store.search("c", vector, 10, -1.0))
