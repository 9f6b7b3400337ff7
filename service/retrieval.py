"""Retrieve policy passages for a question, and lay them out as a numbered context.

:class:`Retriever` does the I/O (embed the question, query Qdrant);
:func:`build_context` is pure: it numbers passages ``[1]``, ``[2]``, ... in the
order given, one paragraph each, and stops before the token budget would be
exceeded. Those numbers are the citations the model is asked to use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qdrant_client import AsyncQdrantClient

from service.embeddings import Embedder
from service.tokens import estimate_tokens
from service.tracing import record_retrieval, retrieval_span
from service.vectorstore import STORE_ERRORS, build_store_error

__all__ = ["Passage", "Retriever", "build_context", "render_passage"]

_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Passage:
    """A retrieved passage and its cosine similarity to the question."""

    passage_id: str
    source: str
    title: str
    text: str
    score: float


class Retriever:
    """Semantic search over collections written by :func:`service.indexing.index_documents`."""

    def __init__(self, client: AsyncQdrantClient, embedder: Embedder) -> None:
        self._client = client
        self._embedder = embedder

    async def retrieve(
        self, collection: str, question: str, top_k: int, min_score: float
    ) -> list[Passage]:
        """Up to ``top_k`` passages scoring at least ``min_score``, best first.

        Raises EmbeddingError, or RetrievalError (also when the collection is missing).
        """
        with retrieval_span(collection, top_k, question) as span:
            passages = await self._retrieve(collection, question, top_k, min_score)
            record_retrieval(span, passages)
            return passages

    async def _retrieve(
        self, collection: str, question: str, top_k: int, min_score: float
    ) -> list[Passage]:
        if top_k < 1:
            return []
        (vector,) = await self._embedder.embed([question])
        try:
            response = await self._client.query_points(
                collection,
                query=vector,
                limit=top_k,
                score_threshold=min_score,
                with_payload=True,
            )
        except STORE_ERRORS as exc:
            raise build_store_error(exc, collection) from exc
        passages: list[Passage] = []
        for point in response.points:
            payload = point.payload or {}
            if point.score < min_score:
                continue
            passages.append(
                Passage(
                    passage_id=str(payload.get("passage_id", point.id)),
                    source=str(payload.get("source", "")),
                    title=str(payload.get("title", "")),
                    text=str(payload.get("text", "")),
                    score=float(point.score),
                )
            )
        return passages

    async def collection_exists(self, name: str) -> bool:
        """Whether ``name`` exists (raises RetrievalError when the store fails)."""
        try:
            return await self._client.collection_exists(name)
        except STORE_ERRORS as exc:
            raise build_store_error(exc, name) from exc


def render_passage(number: int, passage: Passage) -> str:
    """``[n] (source) text`` on one line: the passage's whitespace collapsed (pure)."""
    return f"[{number}] ({passage.source}) {' '.join(passage.text.split())}"


def build_context(passages: Sequence[Passage], max_tokens: int) -> tuple[str, list[Passage]]:
    """The numbered context block and the passages in it (pure).

    Passages are taken in order, whole, separated by blank lines, until the next
    one would push :func:`~service.tokens.estimate_tokens` of the block over
    ``max_tokens``; the rest are left out. The returned passages' order gives
    the ``[n]`` numbers.
    """
    context = ""
    included: list[Passage] = []
    for passage in passages:
        block = render_passage(len(included) + 1, passage)
        candidate = f"{context}{_SEPARATOR}{block}" if context else block
        if estimate_tokens(candidate) > max_tokens:
            break
        context = candidate
        included.append(passage)
    return context, included
