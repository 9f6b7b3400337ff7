"""MirroredQdrant against the real embedded Qdrant: same answers as the store's own search,
and in sync after every kind of write."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from qdrant_client import AsyncQdrantClient, models

from service.errors import RetrievalError
from service.retrieval.embeddings import OnnxMiniLMEmbedder
from service.retrieval.indexing import index_documents
from service.retrieval.mirror import MirroredQdrant, fetch_top_k, point_key
from service.retrieval.search import Retriever
from service.retrieval.vectorstore import open_qdrant
from service.settings import Settings

DIM = 8
pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def mirrored() -> AsyncIterator[MirroredQdrant]:
    client = MirroredQdrant(location=":memory:")
    await client.create_collection(
        "c", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    yield client
    await client.close()


def points(rng: np.random.Generator, n: int, start: int = 0) -> list[models.PointStruct]:
    return [
        models.PointStruct(
            id=str(uuid.UUID(int=start + i)),
            vector=rng.normal(size=DIM).tolist(),
            payload={"passage_id": f"p{start + i}", "text": f"text {start + i}"},
        )
        for i in range(n)
    ]


async def store_answer(
    client: AsyncQdrantClient, vector: list[float], k: int, min_score: float
) -> list[tuple[str, float]]:
    """The embedded store's own search (the path the mirror replaces)."""
    response = await AsyncQdrantClient.query_points(
        client, "c", query=vector, limit=k, score_threshold=min_score, with_payload=True
    )
    return [(point_key(p.id), p.score) for p in response.points]


async def assert_same_as_store(client: MirroredQdrant, rng: np.random.Generator) -> None:
    for k, min_score in [(1, -1.0), (3, -1.0), (5, 0.2), (500, 0.0), (3, 0.99)]:
        query = rng.normal(size=DIM).tolist()
        hits = await client.search_exact("c", query, k, min_score)
        expected = await store_answer(client, query, k, min_score)
        assert [h.id for h in hits] == [pid for pid, _ in expected]
        assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-5)


async def test_same_results_as_the_store_and_sync_after_upsert_and_delete(
    mirrored: MirroredQdrant,
) -> None:
    rng = np.random.default_rng(1)
    assert await mirrored.search_exact("c", [1.0] * DIM, 3, -1.0) == []  # empty collection
    await mirrored.upsert("c", points=points(rng, 200))
    await assert_same_as_store(mirrored, rng)
    assert mirrored.mirrored("c") is not None
    # Writes after the mirror is loaded are applied to it, not reloaded.
    await mirrored.upsert("c", points=points(rng, 50, start=180))  # 20 replaced, 30 new
    doomed = [str(uuid.UUID(int=i)) for i in range(0, 200, 3)]
    await mirrored.delete("c", points_selector=models.PointIdsList(points=list(doomed)))
    await mirrored.delete("c", points_selector=[str(uuid.UUID(int=1)).upper()])
    index = mirrored.mirrored("c")
    assert index is not None
    assert len(index) == 230 - len(doomed) - 1
    assert str(uuid.UUID(int=1)) not in index
    await assert_same_as_store(mirrored, rng)
    hit = (await mirrored.search_exact("c", [1.0] * DIM, 1, -1.0))[0]
    assert hit.payload["text"] == f"text {hit.payload['passage_id'][1:]}"


@pytest.mark.parametrize(
    "write",
    ["filter-delete", "set-payload", "batch", "upload-points"],
)
async def test_other_writes_drop_the_mirror_which_reloads(
    mirrored: MirroredQdrant, write: str
) -> None:
    rng = np.random.default_rng(2)
    await mirrored.upsert("c", points=points(rng, 40))
    await mirrored.search_exact("c", [1.0] * DIM, 3, -1.0)
    assert mirrored.mirrored("c") is not None
    if write == "filter-delete":
        selector = models.Filter(
            must=[models.FieldCondition(key="passage_id", match=models.MatchValue(value="p3"))]
        )
        await mirrored.delete("c", points_selector=models.FilterSelector(filter=selector))
    elif write == "set-payload":
        await mirrored.set_payload("c", payload={"text": "changed"}, points=[str(uuid.UUID(int=3))])
    elif write == "upload-points":
        # A plain (not async) method of the async client: it stays one.
        mirrored.upload_points("c", points=points(rng, 5, 200), wait=True)
    else:
        await mirrored.batch_update_points(
            "c", [models.UpsertOperation(upsert=models.PointsList(points=points(rng, 5, 100)))]
        )
    assert mirrored.mirrored("c") is None
    await assert_same_as_store(mirrored, rng)
    best = await mirrored.search_exact("c", (await store_vector(mirrored, 3)), 1, -1.0)
    if write == "filter-delete":
        assert best[0].id != str(uuid.UUID(int=3))
    elif write == "set-payload":
        assert best[0].payload["text"] == "changed"


async def store_vector(client: AsyncQdrantClient, n: int) -> list[float]:
    records = await client.retrieve("c", [str(uuid.UUID(int=n))], with_vectors=True)
    if records:
        vector = records[0].vector
        assert isinstance(vector, list)
        return [float(x) for x in vector if isinstance(x, float)]
    return [1.0] * DIM


async def test_a_load_that_races_a_write_is_not_kept(mirrored: MirroredQdrant) -> None:
    rng = np.random.default_rng(3)
    await mirrored.upsert("c", points=points(rng, 10))
    original_scroll = mirrored.scroll

    async def scroll_then_write(*args: object, **kwargs: object) -> object:
        result = await original_scroll(*args, **kwargs)  # type: ignore[arg-type]
        await mirrored.upsert("c", points=points(rng, 1, start=99))
        return result

    mirrored.scroll = scroll_then_write  # type: ignore[method-assign,assignment]
    hits = await mirrored.search_exact("c", [1.0] * DIM, 20, -1.0)
    assert len(hits) == 10  # the snapshot it read
    assert mirrored.mirrored("c") is None  # but not kept: the next search reloads
    del mirrored.scroll
    assert len(await mirrored.search_exact("c", [1.0] * DIM, 20, -1.0)) == 11


async def test_collection_changes_and_missing_collections(mirrored: MirroredQdrant) -> None:
    rng = np.random.default_rng(4)
    await mirrored.upsert("c", points=points(rng, 5))
    await mirrored.search_exact("c", [1.0] * DIM, 3, -1.0)
    await mirrored.delete_collection("c")
    assert mirrored.mirrored("c") is None
    with pytest.raises(ValueError, match="not found"):
        await mirrored.search_exact("c", [1.0] * DIM, 3, -1.0)
    await mirrored.create_collection(
        "c", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    assert await fetch_top_k(mirrored, "c", [1.0] * DIM, 3, -1.0) == []


async def test_named_vectors_fall_back_to_the_store() -> None:
    client = MirroredQdrant(location=":memory:")
    try:
        config = {"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)}
        await client.create_collection("c", vectors_config=config)
        with pytest.raises(ValueError, match="is not found in the collection"):
            await client.search_exact("c", [1.0] * DIM, 3, -1.0)
        assert client.mirrored("c") is None
    finally:
        await client.close()


async def test_open_qdrant_mirrors_embedded_stores_only(tmp_path: object) -> None:
    client = open_qdrant(Settings(qdrant_path=":memory:"))
    assert isinstance(client, MirroredQdrant)
    await client.close()
    server = open_qdrant(Settings(qdrant_url="http://127.0.0.1:9"))
    assert not isinstance(server, MirroredQdrant)
    await server.close()


async def test_retriever_over_the_mirror_stays_in_sync_with_indexing(
    minilm: OnnxMiniLMEmbedder,
) -> None:
    client = MirroredQdrant(location=":memory:")
    plain = AsyncQdrantClient(location=":memory:")
    try:
        docs = [("a.md", "# Refunds\nRefunds take 14 days."), ("b.md", "# Tea\nWe sell tea.")]
        for store in (client, plain):
            await index_documents(store, minilm, "p", docs)
        retriever = Retriever(client, minilm)
        (first,) = await retriever.retrieve("p", "how long do refunds take", 1, -1.0)
        assert first.source == "a.md"
        assert client.mirrored("p") is not None
        changed = [("b.md", "# Refunds\nRefunds now take 30 days, said the tea shop.")]
        for store in (client, plain):
            await index_documents(store, minilm, "p", changed, prune=True)
        mine = await retriever.retrieve("p", "how long do refunds take", 3, -1.0)
        theirs = await Retriever(plain, minilm).retrieve("p", "how long do refunds take", 3, -1.0)
        assert [(p.source, p.text) for p in mine] == [(p.source, p.text) for p in theirs]
        assert [p.score for p in mine] == pytest.approx([p.score for p in theirs], abs=1e-5)
        assert [p.source for p in mine] == ["b.md"]
        with pytest.raises(RetrievalError, match="does not exist"):
            await retriever.retrieve("missing", "tea", 3, -1.0)
    finally:
        await client.close()
        await plain.close()
