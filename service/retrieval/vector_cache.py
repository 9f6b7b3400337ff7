"""Passage vectors computed ahead of time for a corpus folder, keyed by content and model.

Embedding the shipped corpora at every start of an in-memory store (``QDRANT_PATH=:memory:``)
was ~2 s of CPU with the bundled model, about half of the shipped service's cold start. A
corpus folder may carry ``.embeddings/<model id>.npz``: the vectors of its passages, each
keyed by ``sha256(model id, NUL, the exact text embedded)``. Start-up indexing
(:func:`service.resources.index_corpora`) looks passages up there first and embeds only
the misses, so nothing stale can be served:

- a passage whose text, title or chunking changed has another key: it misses and is embedded;
- a file made for another model is not used (its model id is in the file name and checked);
- before the first vector is used, one cached passage is embedded again and compared
  (cosine >= 0.999): a different model or runtime under the same id disables the file
  (a warning says so) and everything is embedded as before.

The file is as trusted as the corpus folder it sits in (whoever can write one can write
the other). Build or refresh it with::

    python -m service.retrieval.vector_cache data/policies data/faq

(``tests/service/retrieval/test_vector_cache.py`` fails when a shipped file misses passages.)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from service.retrieval.embeddings import Embedder, OnnxMiniLMEmbedder

__all__ = [
    "MIN_AGREEMENT",
    "CachedEmbedder",
    "build_text_key",
    "cache_path",
    "read_vectors",
    "write_vectors",
]

_log = logging.getLogger(__name__)

#: Cosine similarity a re-embedded passage must reach against its stored vector.
MIN_AGREEMENT = 0.999


def build_text_key(model_id: str, text: str) -> bytes:
    """The key of ``text`` embedded by ``model_id`` (pure)."""
    return hashlib.sha256(f"{model_id}\0{text}".encode("utf-8", "surrogatepass")).digest()


def cache_path(folder: Path, model_id: str) -> Path:
    """Where a corpus folder keeps its vectors for ``model_id`` (hidden: not a document)."""
    return folder / ".embeddings" / f"{model_id}.npz"


def read_vectors(path: Path, model_id: str) -> dict[bytes, list[float]]:
    """The vectors of a cache file, by key; empty when the file is missing or unusable."""
    if not path.is_file():
        return {}
    import numpy as np  # noqa: PLC0415 - only when a corpus folder has a cache file

    try:
        with np.load(path, allow_pickle=False) as data:
            stored_model = str(data["model_id"])
            keys, vectors = data["keys"], data["vectors"]
    except (OSError, ValueError, KeyError) as exc:
        _log.warning("ignoring the vector cache %s: %s", path, exc)
        return {}
    if stored_model != model_id or vectors.ndim != 2 or len(keys) != len(vectors):
        _log.warning("ignoring the vector cache %s: made for another model", path)
        return {}
    return {bytes(key): vector.tolist() for key, vector in zip(keys, vectors, strict=True)}


def write_vectors(path: Path, model_id: str, entries: dict[bytes, Sequence[float]]) -> None:
    """Write a cache file (keys sorted, so the same passages give the same file)."""
    import numpy as np  # noqa: PLC0415 - like read_vectors

    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted(entries)
    with path.open("wb") as out:
        np.savez_compressed(
            out,
            model_id=np.array(model_id),
            keys=np.array([np.frombuffer(k, dtype=np.uint8) for k in keys], dtype=np.uint8),
            vectors=np.array([entries[k] for k in keys], dtype=np.float32),
        )


class CachedEmbedder:
    """An embedder that takes known passages' vectors from a cache, verified on first use."""

    def __init__(self, embedder: Embedder, vectors: dict[bytes, list[float]]) -> None:
        self._embedder = embedder
        self._vectors = vectors
        self._verified = False
        self.hits = 0
        self.misses = 0

    @property
    def model_id(self) -> str:
        """The wrapped embedder's model id."""
        return self._embedder.model_id

    @property
    def dimension(self) -> int:
        """The wrapped embedder's dimension."""
        return self._embedder.dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Cached vectors for known texts, the wrapped embedder's for the others."""
        keys = [build_text_key(self.model_id, text) for text in texts]
        known = [(t, k) for t, k in zip(texts, keys, strict=True) if k in self._vectors]
        if known and not self._verified:
            await self._verify(known[0])
        found = [self._vectors.get(key) for key in keys]
        missing = [text for text, vector in zip(texts, found, strict=True) if vector is None]
        fresh = iter(await self._embedder.embed(missing) if missing else [])
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        return [vector if vector is not None else next(fresh) for vector in found]

    async def _verify(self, sample: tuple[str, bytes]) -> None:
        text, key = sample
        (fresh,) = await self._embedder.embed([text])
        cached = self._vectors[key]
        agreement = (
            sum(a * b for a, b in zip(fresh, cached, strict=True))
            if len(fresh) == len(cached)
            else -1.0
        )
        self._verified = True
        if agreement < MIN_AGREEMENT:
            _log.warning(
                "vector cache disabled: a cached passage re-embedded agrees to %.4f (< %s); "
                "the model differs from the one that built it: rebuild it with "
                "`python -m service.retrieval.vector_cache FOLDER`",
                agreement,
                MIN_AGREEMENT,
            )
            self._vectors = {}


class _Recorder:
    """Embeds through ``embedder`` and keeps every text's vector by key."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self.model_id = embedder.model_id
        self.dimension = embedder.dimension
        self.entries: dict[bytes, Sequence[float]] = {}

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = await self._embedder.embed(texts)
        for text, vector in zip(texts, vectors, strict=True):
            self.entries[build_text_key(self.model_id, text)] = vector
        return vectors


async def build_cache(folder: Path, embedder: Embedder) -> Path:
    """Index ``folder`` into a throw-away store and write every embedded passage's vector."""
    from service.retrieval.chunking import read_documents  # noqa: PLC0415 - the CLI only
    from service.retrieval.indexing import index_documents  # noqa: PLC0415 - the CLI only
    from service.retrieval.store import MemoryStore  # noqa: PLC0415 - the CLI only

    recorder = _Recorder(embedder)
    await index_documents(MemoryStore(), recorder, "cache", read_documents(folder))
    path = cache_path(folder, embedder.model_id)
    write_vectors(path, embedder.model_id, recorder.entries)
    return path


def main(folders: Sequence[str]) -> int:
    """``python -m service.retrieval.vector_cache FOLDER...``: build each folder's cache."""
    if not folders:
        sys.stderr.write("usage: python -m service.retrieval.vector_cache FOLDER...\n")
        return 2
    embedder = OnnxMiniLMEmbedder()
    for folder in folders:
        path = asyncio.run(build_cache(Path(folder), embedder))
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
