"""Vectors built ahead for a corpus folder: used only for identical text and the same model,
verified before use, and kept complete for the shipped corpora."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from service.resources import index_corpora
from service.retrieval.chunking import read_documents
from service.retrieval.embeddings import MINILM_DIMENSION, MINILM_MODEL_ID, OnnxMiniLMEmbedder
from service.retrieval.indexing import index_documents
from service.retrieval.search import Retriever
from service.retrieval.store import MemoryStore
from service.retrieval.vector_cache import (
    CachedEmbedder,
    build_text_key,
    cache_path,
    read_vectors,
    write_vectors,
)

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = [ROOT / "data" / "policies", ROOT / "data" / "faq"]


class HashEmbedder:
    """A deterministic embedder that counts the texts it embeds."""

    def __init__(self, model_id: str = "hash-8", dimension: int = 8) -> None:
        self.model_id = model_id
        self.dimension = dimension
        self.embedded: list[str] = []

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.embedded += texts
        vectors = []
        for text in texts:
            vector = [0.0] * self.dimension
            for word in text.lower().split():
                vector[hashlib.sha256(word.encode()).digest()[0] % self.dimension] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
async def test_the_shipped_cache_holds_every_passage_of_its_corpus(folder: Path) -> None:
    recorder = HashEmbedder(MINILM_MODEL_ID, MINILM_DIMENSION)
    await index_documents(MemoryStore(), recorder, "c", read_documents(folder))
    stored = read_vectors(cache_path(folder, MINILM_MODEL_ID), MINILM_MODEL_ID)
    missing = [t for t in recorder.embedded if build_text_key(MINILM_MODEL_ID, t) not in stored]
    assert recorder.embedded
    rebuild = f"python -m service.retrieval.vector_cache {folder.relative_to(ROOT)}"
    assert missing == [], f"{folder} changed: run `{rebuild}`"


async def test_known_texts_come_from_the_cache_and_others_from_the_model() -> None:
    model = HashEmbedder()
    known = await HashEmbedder().embed(["refunds take 30 days", "parcels ship fast"])
    cache = {
        build_text_key("hash-8", "refunds take 30 days"): known[0],
        build_text_key("hash-8", "parcels ship fast"): known[1],
    }
    cached = CachedEmbedder(model, cache)
    texts = ["parcels ship fast", "refunds take 31 days", "refunds take 30 days"]
    vectors = await cached.embed(texts)
    assert vectors == await HashEmbedder().embed(texts)
    # One known passage re-embedded to verify the cache, then only the changed text.
    assert model.embedded == ["parcels ship fast", "refunds take 31 days"]
    assert (cached.hits, cached.misses) == (2, 1)


async def test_a_cache_the_model_disagrees_with_is_not_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = HashEmbedder()
    wrong = [1.0] + [0.0] * 7  # not what the model makes of this text
    cached = CachedEmbedder(model, {build_text_key("hash-8", "parcels ship fast"): wrong})
    with caplog.at_level(logging.WARNING):
        vectors = await cached.embed(["parcels ship fast"])
    assert vectors == await HashEmbedder().embed(["parcels ship fast"])
    assert cached.hits == 0
    assert "vector cache disabled" in caplog.text


async def test_a_file_for_another_model_or_a_broken_file_is_ignored(tmp_path: Path) -> None:
    path = cache_path(tmp_path, "other-model")
    write_vectors(path, "other-model", {build_text_key("other-model", "x"): [1.0, 0.0]})
    assert read_vectors(path, "other-model") == {build_text_key("other-model", "x"): [1.0, 0.0]}
    assert read_vectors(path, "hash-8") == {}
    path.write_bytes(b"not a numpy file")
    assert read_vectors(path, "other-model") == {}
    assert read_vectors(tmp_path / "missing.npz", "other-model") == {}


async def test_start_up_indexing_with_the_cache_retrieves_as_without_it(
    minilm: OnnxMiniLMEmbedder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The shipped policies through the cache: the same passages, the same scores."""
    plain_folder = tmp_path / "policies"
    plain_folder.mkdir()
    for source in SHIPPED[0].glob("*.md"):
        (plain_folder / source.name).write_text(source.read_text())  # no .embeddings here
    with_cache, without = MemoryStore(), MemoryStore()
    with caplog.at_level(logging.INFO, logger="service.resources"):
        await index_corpora(with_cache, minilm, {"p": SHIPPED[0]})
        await index_corpora(without, minilm, {"p": plain_folder})
    taken = [r.getMessage() for r in caplog.records if "vectors taken from" in r.getMessage()]
    assert len(taken) == 1
    assert str(SHIPPED[0]) in taken[0]
    for question in ("How long do refunds take?", "Can I ship to a PO box?"):
        ours = await Retriever(with_cache, minilm, query_cache=0).retrieve("p", question, 3, 0.0)
        theirs = await Retriever(without, minilm, query_cache=0).retrieve("p", question, 3, 0.0)
        assert [p.passage_id for p in ours] == [p.passage_id for p in theirs]
        assert [p.score for p in ours] == pytest.approx([p.score for p in theirs], abs=1e-3)
