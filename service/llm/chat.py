"""The seam between answering and the model: one request type, one response type, one protocol.

:class:`ChatModel` is implemented by :class:`service.llm.openai_chat.OpenAIChatModel` (an
OpenAI-compatible ``/chat/completions`` endpoint over httpx); resilience (retries,
breaker, rate limits, fallbacks) wraps it. :class:`GroundedModel` is the embedded
no-model default (:class:`service.llm.extractive.ExtractiveAnswerer`): it answers only from
the texts of the retrieved passages, which the pipeline hands it beside the request.
A chat request carries no retrieval types: this module depends on rendering alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, cast, runtime_checkable

from prompting.rendering import Message
from service.llm.resilience.deadline import Deadline

__all__ = [
    "STREAM_EXTENSION",
    "AnswerModel",
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "GroundedModel",
    "RawResponse",
    "ResponseFormat",
    "ToolCall",
    "call_model",
]

#: Request extension asking the transport for a streamed body (``client.build_request(...,
#: extensions={STREAM_EXTENSION: True})`` then ``client.send(request, stream=True)``); here,
#: not in :mod:`service.llm.transport`, so that the clients using it do not import aiohttp.
STREAM_EXTENSION = "prompt_rollouts.stream"


@dataclass(frozen=True, slots=True)
class RawResponse:
    """An upstream response read whole without httpx's models (the transport's ``post``);
    here, not in :mod:`service.llm.transport`, so that its users do not import aiohttp."""

    status: int
    #: Case-insensitive, as received.
    headers: Mapping[str, str]
    #: The body, content-encoding decoded.
    content: bytes


@dataclass(frozen=True)
class ResponseFormat:
    """Structured output asked of the model: JSON meeting `schema` (a version's ``spec.output``).

    An OpenAI-compatible upstream gets it as ``response_format: {type: json_schema,
    json_schema: {name, schema, strict}}`` (see :mod:`service.llm.openai_chat`).
    """

    name: str
    schema: Mapping[str, Any]
    strict: bool = False


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for: its id, the tool's name, JSON arguments as sent."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatRequest:
    """Everything a model needs to answer one question."""

    model: str
    messages: list[Message]
    temperature: float
    max_tokens: int
    timeout_seconds: float
    question: str
    user: str | None = None
    #: Models tried in order when `model` cannot answer.
    fallbacks: tuple[str, ...] = ()
    #: Sent upstream as Idempotency-Key, the same on every retry of this request.
    idempotency_key: str | None = None
    #: The request's one deadline, started when it arrived (covers queueing and
    #: retrieval too); the model call never runs past it, nor past `timeout_seconds`.
    deadline: Deadline | None = None
    #: The caller's free text (`service.llm.summarizer.build_inputs`), which the embedded
    #: answerer summarises when there are no passages.
    inputs: tuple[str, ...] = ()
    #: Structured output the answer must meet (None: free text).
    response_format: ResponseFormat | None = None
    #: OpenAI function definitions offered to the model (``tools`` in the body).
    tools: tuple[dict[str, Any], ...] = ()
    #: OpenAI-shaped messages after `messages`: assistant tool calls and tool results.
    turns: tuple[dict[str, Any], ...] = ()
    #: ``tool_choice`` sent with `tools` ("none": the model must answer now).
    tool_choice: str | None = None


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
    #: Function calls the model asked for instead of (or beside) an answer.
    tool_calls: tuple[ToolCall, ...] = ()


class ChatModel(Protocol):
    """Something that answers chat requests."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer `request`, or raise ModelError."""
        ...


@runtime_checkable
class GroundedModel(Protocol):
    """Something that answers only from given source texts (the embedded answerer)."""

    async def answer_from(self, sources: Sequence[str], request: ChatRequest) -> ChatResponse:
        """Answer `request` from `sources`, in citation order ([1] is sources[0]); or raise
        ModelError."""
        ...


#: What the answering pipeline calls: a chat model, or a grounded one.
AnswerModel: TypeAlias = ChatModel | GroundedModel


async def call_model(
    model: AnswerModel, request: ChatRequest, sources: Sequence[str]
) -> ChatResponse:
    """`model`'s reply: a grounded model gets `sources`, a chat model the request alone."""
    # What `isinstance(model, GroundedModel)` decides (a runtime protocol of one method),
    # without the protocol check's cost on every answer.
    answer_from = getattr(model, "answer_from", None)
    if answer_from is not None:
        return await cast("GroundedModel", model).answer_from(sources, request)
    return await cast("ChatModel", model).complete(request)
