"""One request on its way through the answer pipeline (service.answering.pipeline).

:class:`AnswerCall` gathers what the request asked and what it went through (the
:class:`~service.answering.result.AnswerResult` is built from it); :class:`PreparedCall` is
a request ready for the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from prompting.rendering import Message
from service.answering.context import Context
from service.answering.result import RetrievalFacts
from service.answering.schemas import AnswerRequest
from service.catalog.registry import ServedVersion
from service.llm.chat import ChatRequest, ChatResponse
from service.llm.resilience.deadline import Deadline
from service.retrieval.search import Passage

__all__ = ["AnswerCall", "PreparedCall"]


@dataclass
class AnswerCall:
    """One request on its way through the pipeline: what it asked, and what it went through."""

    request: AnswerRequest
    request_id: str
    idempotency_key: str | None
    served: ServedVersion
    deadline: Deadline
    started: float
    retrieval: RetrievalFacts | None = None
    messages: tuple[Message, ...] = ()
    reply: ChatResponse | None = None
    leak: str | None = None
    passages: tuple[Passage, ...] = ()
    repairs: int = 0


@dataclass(frozen=True)
class PreparedCall:
    """A request ready for the model: what to send, and what the guardrails need."""

    chat: ChatRequest
    context: Context
    canary: str
    #: The system message minus caller and document text (``build_protected_text``).
    protected: str
