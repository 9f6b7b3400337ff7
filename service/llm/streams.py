"""Streamed model replies: one type for every model, and the one way to open a stream.

::

    open_model_stream(model, request, sources) ──> ChatStream
        first   the first piece of text (the call failed before it: ModelError raised)
        rest    the remaining pieces; a failure after the first piece raises UpstreamError
        usage   filled in when `rest` is exhausted (the upstream's usage chunk, or estimates)

A model that streams (:class:`StreamingChatModel`: the OpenAI-compatible client and the
resilient model around it) streams; the embedded answerer streams its answer sentence by
sentence; any other model answers whole and its answer is one piece.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from prompting.tokens import estimate_tokens
from service.llm.chat import AnswerModel, ChatRequest, ChatResponse, call_model

__all__ = [
    "ChatStream",
    "StreamUsage",
    "StreamingChatModel",
    "build_whole_stream",
    "estimate_usage",
    "open_model_stream",
    "split_sentences_kept",
]

_SENTENCE = re.compile(r".+?(?:[.!?](?:\s*\[\d{1,3}\])*(?=\s|$)|$)\s*", re.DOTALL)


@dataclass
class StreamUsage:
    """Tokens of a streamed reply, known once it ended."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class ChatStream:
    """A model reply arriving in pieces."""

    model: str
    first: str
    rest: AsyncIterator[str]
    usage: StreamUsage = field(default_factory=StreamUsage)
    #: Attempts beyond the first, over every model tried (before the first piece).
    retries: int = 0
    #: Streamed by a model from the request's fallbacks.
    fallback_used: bool = False

    async def aclose(self) -> None:
        """Stop reading (closes the upstream connection)."""
        closer = getattr(self.rest, "aclose", None)
        if closer is not None:
            await closer()


@runtime_checkable
class StreamingChatModel(Protocol):
    """A chat model that can stream its reply."""

    async def open_stream(self, request: ChatRequest) -> ChatStream:
        """Call the model and wait for the first piece of its reply; or raise ModelError."""
        ...


def split_sentences_kept(text: str) -> list[str]:
    """`text` in sentences (a sentence keeps its [n] markers and the space after it), whose
    concatenation is `text` (pure)."""
    return [piece for piece in _SENTENCE.findall(text) if piece]


async def _pieces(pieces: Sequence[str]) -> AsyncIterator[str]:
    for piece in pieces:
        yield piece


def build_whole_stream(reply: ChatResponse, pieces: Sequence[str] | None = None) -> ChatStream:
    """A reply already complete, as a stream of `pieces` (default: its sentences)."""
    parts = list(pieces) if pieces is not None else split_sentences_kept(reply.text)
    parts = parts or [""]
    return ChatStream(
        model=reply.model,
        first=parts[0],
        rest=_pieces(parts[1:]),
        usage=StreamUsage(reply.input_tokens, reply.output_tokens),
        retries=reply.retries,
        fallback_used=reply.fallback_used,
    )


async def open_model_stream(
    model: AnswerModel, request: ChatRequest, sources: Sequence[str]
) -> ChatStream:
    """`model`'s reply as a stream: streamed by a streaming model, else sentence by sentence."""
    if isinstance(model, StreamingChatModel):
        return await model.open_stream(request)
    reply = await call_model(model, request, sources)
    return build_whole_stream(reply)


def estimate_usage(request: ChatRequest, text: str) -> StreamUsage:
    """Token estimates for a stream whose upstream sent no usage (pure)."""
    return StreamUsage(
        sum(estimate_tokens(m.content) for m in request.messages), estimate_tokens(text)
    )
