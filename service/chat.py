"""The seam between answering and the model: one request type, one response type, one protocol.

Two implementations exist: :class:`service.openai_chat.OpenAIChatModel` (an
OpenAI-compatible ``/chat/completions`` endpoint over httpx) and
:class:`service.extractive.ExtractiveAnswerer` (the embedded no-model default).
Resilience (retries, breaker, rate limits, fallbacks) wraps this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from service.rendering import Message
from service.resilience.deadline import Deadline
from service.retrieval import Passage

__all__ = ["ChatModel", "ChatRequest", "ChatResponse"]


@dataclass(frozen=True)
class ChatRequest:
    """Everything a model needs to answer one question."""

    model: str
    messages: list[Message]
    temperature: float
    max_tokens: int
    timeout_seconds: float
    question: str
    #: The passages of the CONTEXT block, in citation order ([1] is passages[0]).
    passages: list[Passage] = field(default_factory=list)
    user: str | None = None
    #: Models tried in order when `model` cannot answer.
    fallbacks: tuple[str, ...] = ()
    #: Sent upstream as Idempotency-Key, the same on every retry of this request.
    idempotency_key: str | None = None
    #: The request's one deadline, started when it arrived (covers queueing and
    #: retrieval too); the model call never runs past it, nor past `timeout_seconds`.
    deadline: Deadline | None = None
    #: The caller's free text (`service.summarizer.build_inputs`), which the embedded
    #: answerer summarises when there are no passages.
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatResponse:
    """A model's answer and what it cost in tokens."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    #: Attempts beyond the first, over every model tried.
    retries: int = 0
    #: Answered by a model from `fallbacks`.
    fallback_used: bool = False
    #: Served from the response cache without an upstream call.
    cache_hit: bool = False


class ChatModel(Protocol):
    """Something that answers chat requests."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer `request`, or raise ModelError."""
        ...
