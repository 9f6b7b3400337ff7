"""Retrieve policy passages for a question, and lay them out as a numbered, delimited context.

:class:`Retriever` does the I/O (embed the question, query Qdrant) and screens every
passage again (:mod:`prompting.screening`): instruction-like sentences are dropped and
counted in :attr:`Passage.screened`. :func:`build_context` is pure: it numbers
passages ``[1]``, ``[2]``, ... in the order given, one paragraph each, and stops
before the token budget would be exceeded. Those numbers are the citations the model
is asked to use. :func:`delimit_context` encloses the block between two marker lines
carrying a random boundary drawn per request (:func:`draw_boundary`), which no
passage contains, so retrieved text cannot close the block and speak as the prompt.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prompting.screening import screen_text
from prompting.tokens import estimate_tokens
from service.retrieval.embeddings import Embedder
from service.retrieval.query_cache import QueryEmbeddingCache
from service.retrieval.store import VectorStore
from service.retrieval.vectorstore import as_store
from service.telemetry.spans import Tracing, record_retrieval, retrieval_span

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

__all__ = [
    "Passage",
    "Retriever",
    "build_context",
    "delimit_context",
    "draw_boundary",
    "reference_markers",
    "render_passage",
]

_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Passage:
    """A retrieved passage and its cosine similarity to the question."""

    passage_id: str
    source: str
    title: str
    text: str
    score: float
    #: Instruction-like sentences screened out of this passage (at index or retrieval time).
    screened: int = 0


class Retriever:
    """Semantic search over collections written by
    :func:`service.retrieval.indexing.index_documents`."""

    def __init__(
        self,
        client: VectorStore | AsyncQdrantClient,
        embedder: Embedder,
        tracing: Tracing | None = None,
        query_cache: int = 1024,
    ) -> None:
        self._store = as_store(client)
        self._embedder = embedder
        self._tracing = tracing or Tracing()
        #: Question embeddings, LRU-bounded to ``query_cache`` entries (0: off).
        self.query_cache = QueryEmbeddingCache(embedder, query_cache)

    async def retrieve(
        self, collection: str, question: str, top_k: int, min_score: float
    ) -> list[Passage]:
        """Up to ``top_k`` passages scoring at least ``min_score``, best first.

        Raises EmbeddingError, or RetrievalError (also when the collection is missing).
        """
        with retrieval_span(self._tracing, collection, top_k, question) as span:
            passages = await self._retrieve(collection, question, top_k, min_score)
            record_retrieval(self._tracing, span, passages)
            return passages

    async def _retrieve(
        self, collection: str, question: str, top_k: int, min_score: float
    ) -> list[Passage]:
        if top_k < 1:
            return []
        vector = await self.query_cache.embed_query(question)
        hits = await self._store.search(collection, vector, top_k, min_score)
        passages: list[Passage] = []
        for point in hits:
            payload = point.payload
            screened = screen_text(str(payload.get("text", "")))
            earlier = payload.get("screened", 0)
            passages.append(
                Passage(
                    passage_id=str(payload.get("passage_id", point.id)),
                    source=str(payload.get("source", "")),
                    title=str(payload.get("title", "")),
                    text=screened.text,
                    score=float(point.score),
                    screened=len(screened.flags) + (earlier if isinstance(earlier, int) else 0),
                )
            )
        return passages

    async def collection_exists(self, name: str) -> bool:
        """Whether ``name`` exists (raises RetrievalError when the store fails)."""
        return await self._store.collection_exists(name)


def reference_markers(boundary: str) -> tuple[str, str]:
    """The opening and closing marker lines of a context block (pure)."""
    return f"<<<REFERENCE id={boundary}>>>", f"<<<END REFERENCE id={boundary}>>>"


def draw_boundary(
    passages: Sequence[Passage], token: Callable[[], str] = lambda: secrets.token_hex(12)
) -> str:
    """A random boundary that no passage's source, title or text contains."""
    while True:
        boundary = token()
        if not any(boundary in f"{p.source}\n{p.title}\n{p.text}" for p in passages):
            return boundary


def delimit_context(context: str, boundary: str) -> str:
    """The context block between its marker lines (pure); ValueError if it holds the boundary."""
    if not boundary or boundary in context:
        raise ValueError("the boundary must be non-empty and absent from the context")
    opening, closing = reference_markers(boundary)
    return f"{opening}\n{context}\n{closing}"


def render_passage(number: int, passage: Passage) -> str:
    """``[n] (source) text`` on one line: the passage's whitespace collapsed (pure)."""
    return f"[{number}] ({passage.source}) {' '.join(passage.text.split())}"


def build_context(passages: Sequence[Passage], max_tokens: int) -> tuple[str, list[Passage]]:
    """The numbered context block and the passages in it (pure).

    Passages are taken in order, whole, separated by blank lines, until the next
    one would push :func:`~prompting.tokens.estimate_tokens` of the block over
    ``max_tokens``; the rest are left out. Passages with no text left after
    screening are skipped. The returned passages' order gives the ``[n]`` numbers.
    """
    context = ""
    included: list[Passage] = []
    for passage in passages:
        if not passage.text.strip():  # everything in it was screened out
            continue
        block = render_passage(len(included) + 1, passage)
        candidate = f"{context}{_SEPARATOR}{block}" if context else block
        if estimate_tokens(candidate) > max_tokens:
            break
        context = candidate
        included.append(passage)
    return context, included
