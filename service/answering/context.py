"""Retrieval → the context block of one answer: passages, delimited by a fresh boundary.

:func:`fetch_context` asks the version's collection (under the request's deadline, through
:func:`~service.answering.stages.within`), keeps what fits ``maxContextTokens``, and delimits
it with a per-request boundary the guardrails and the templates both see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from api.v1alpha1 import Retrieval
from service.answering.result import RetrievalFacts
from service.answering.stages import within
from service.llm.resilience.deadline import Deadline
from service.retrieval.search import (
    Passage,
    build_context,
    delimit_context,
    draw_boundary,
    reference_markers,
)

__all__ = ["Context", "PassageSearch", "fetch_context"]


class PassageSearch(Protocol):
    """Where the passages come from (:class:`service.retrieval.search.Retriever` in the service)."""

    async def retrieve(
        self, collection: str, question: str, top_k: int, min_score: float
    ) -> list[Passage]:
        """Up to `top_k` passages scoring at least `min_score`, best first."""
        ...


@dataclass(frozen=True)
class Context:
    """The retrieved context block, as the templates and the guardrails see it."""

    text: str = ""
    passages: tuple[Passage, ...] = ()
    #: The per-request boundary of the context block, and its marker lines.
    boundary: str | None = None
    markers: tuple[str, str] | None = None


async def fetch_context(
    retriever: PassageSearch,
    retrieval: Retrieval,
    question: str,
    deadline: Deadline,
    clock: Callable[[], float],
) -> tuple[Context, RetrievalFacts]:
    """The context block of the version's retrieval, and what the retrieval stage did."""
    retrieval_started = clock()
    retrieved = await within(
        deadline,
        0.0,
        "retrieval",
        retriever.retrieve(retrieval.collection, question, retrieval.top_k, retrieval.min_score),
    )
    seconds = clock() - retrieval_started
    text, passages = build_context(retrieved, retrieval.max_context_tokens)
    facts = RetrievalFacts(
        collection=retrieval.collection,
        seconds=seconds,
        screened=sum(p.screened for p in retrieved),
        empty=not passages,
    )
    if not passages:
        return Context(), facts
    boundary = draw_boundary(passages)
    markers = reference_markers(boundary)
    return Context(delimit_context(text, boundary), tuple(passages), boundary, markers), facts
