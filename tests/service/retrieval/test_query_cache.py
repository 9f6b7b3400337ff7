"""QueryEmbeddingCache: bounded LRU keyed by model and text, around the real bundled model."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from service.errors import EmbeddingError
from service.retrieval.embeddings import OnnxMiniLMEmbedder
from service.retrieval.query_cache import QueryEmbeddingCache, build_cache_key

pytestmark = pytest.mark.asyncio


class Counting:
    """The bundled model, counting the texts it embeds, under a chosen model id."""

    def __init__(self, inner: OnnxMiniLMEmbedder, model_id: str = "m1") -> None:
        self.inner = inner
        self.model_id = model_id
        self.dimension = inner.dimension
        self.calls: list[str] = []
        self.fail = False

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += texts
        if self.fail:
            raise EmbeddingError("down")
        return await self.inner.embed(texts)


async def test_hits_are_the_same_vector_without_embedding_again(
    minilm: OnnxMiniLMEmbedder,
) -> None:
    embedder = Counting(minilm)
    cache = QueryEmbeddingCache(embedder, max_entries=2)
    first = await cache.embed_query("refund policy")
    again = await cache.embed_query("refund policy")
    assert again == first == (await minilm.embed(["refund policy"]))[0]
    assert embedder.calls == ["refund policy"]
    again.append(9.0)  # the caller's copy: the cached vector is untouched
    assert await cache.embed_query("refund policy") == first
    assert (cache.hits, cache.misses) == (2, 1)


async def test_bounded_least_recently_used_first(minilm: OnnxMiniLMEmbedder) -> None:
    embedder = Counting(minilm)
    cache = QueryEmbeddingCache(embedder, max_entries=2)
    for text in ["a", "b", "a", "c", "a", "b"]:
        await cache.embed_query(text)
    # "b" was evicted by "c" (a was used more recently), then came back.
    assert embedder.calls == ["a", "b", "c", "b"]
    assert len(cache) == 2


async def test_keyed_by_model_and_no_text_kept(minilm: OnnxMiniLMEmbedder) -> None:
    embedder = Counting(minilm, "m1")
    cache = QueryEmbeddingCache(embedder)
    await cache.embed_query("Jane Doe's refund")
    embedder.model_id = "m2"  # another vector space: never served from m1's entries
    await cache.embed_query("Jane Doe's refund")
    assert embedder.calls == ["Jane Doe's refund"] * 2
    assert build_cache_key("m1", "x") != build_cache_key("m2", "x")
    assert "Jane" not in repr(list(cache._entries))


async def test_failures_are_not_cached_and_zero_turns_it_off(
    minilm: OnnxMiniLMEmbedder,
) -> None:
    embedder = Counting(minilm)
    cache = QueryEmbeddingCache(embedder)
    embedder.fail = True
    with pytest.raises(EmbeddingError):
        await cache.embed_query("q")
    embedder.fail = False
    await cache.embed_query("q")
    assert embedder.calls == ["q", "q"]
    off = QueryEmbeddingCache(embedder, max_entries=0)
    await off.embed_query("q")
    await off.embed_query("q")
    assert len(off) == 0
    assert embedder.calls == ["q"] * 4
    with pytest.raises(ValueError, match="max_entries"):
        QueryEmbeddingCache(embedder, max_entries=-1)
