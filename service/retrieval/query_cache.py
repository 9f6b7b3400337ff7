"""A bounded LRU of question embeddings, keyed by embedding model and a hash of the text.

The same questions come back (FAQ traffic, retries, canary and stable versions asking the
same collection): embedding one with the bundled model costs ~4-6 ms of CPU, a cache hit
a dictionary lookup. Keys are ``(model_id, sha256(text))``, so the cache holds no question
text, and vectors from two models never mix. ``QUERY_EMBEDDING_CACHE`` bounds the entries
(0 turns the cache off); at 384 floats an entry is ~3 KB as a tuple of floats.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from service.retrieval.embeddings import Embedder

__all__ = ["QueryEmbeddingCache", "build_cache_key"]


def build_cache_key(model_id: str, text: str) -> tuple[str, bytes]:
    """The cache key of ``text`` embedded by ``model_id`` (pure; no text kept)."""
    return model_id, hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class QueryEmbeddingCache:
    """Embeds one question through ``embedder``, remembering the last ``max_entries``."""

    def __init__(self, embedder: Embedder, max_entries: int = 1024) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be 0 or more")
        self._embedder = embedder
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, bytes], tuple[float, ...]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def embed_query(self, text: str) -> list[float]:
        """The unit vector of ``text`` (raises what the embedder raises; failures are not
        cached)."""
        if self.max_entries == 0:
            (vector,) = await self._embedder.embed([text])
            return vector
        key = build_cache_key(self._embedder.model_id, text)
        cached = self._entries.get(key)
        if cached is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return list(cached)
        self.misses += 1
        (vector,) = await self._embedder.embed([text])
        self._entries[key] = tuple(vector)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return vector
