"""The attributes of our spans, in OpenTelemetry's GenAI semantic conventions (pure).

Built here, recorded by the helpers of :mod:`service.telemetry.spans`. Message texts are redacted
(:func:`prompting.redaction.redact`) before they go into an attribute.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import httpx
from opentelemetry.util.types import AttributeValue

from prompting.redaction import redact
from service.errors import UpstreamError

if TYPE_CHECKING:
    from prompting.rendering import Message

__all__ = [
    "RetrievedDocument",
    "build_chat_attributes",
    "build_chat_response_attributes",
    "build_documents",
    "build_error_type",
    "build_finish_reasons",
    "build_input_messages",
    "build_output_messages",
    "build_server_attributes",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class RetrievedDocument(Protocol):
    """What a retrieval span records of each result
    (a :class:`service.retrieval.search.Passage`)."""

    @property
    def passage_id(self) -> str:
        """The passage's id."""
        ...

    @property
    def score(self) -> float:
        """Its similarity to the query."""
        ...


def build_server_attributes(url: str | None) -> dict[str, AttributeValue]:
    """``server.address`` and ``server.port`` of a base URL, the port implied by the scheme."""
    if not url:
        return {}
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return {}
    if not parsed.host:
        return {}
    attributes: dict[str, AttributeValue] = {"server.address": parsed.host}
    port = parsed.port or _DEFAULT_PORTS.get(parsed.scheme)
    if port is not None:
        attributes["server.port"] = port
    return attributes


def build_chat_attributes(
    *,
    provider: str,
    model: str,
    temperature: float | None,
    max_tokens: int | None,
    server_url: str | None,
) -> dict[str, AttributeValue]:
    """The attributes a ``chat {model}`` span starts with (pure)."""
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    if temperature is not None:
        attributes["gen_ai.request.temperature"] = float(temperature)
    if max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = max_tokens
    return attributes | build_server_attributes(server_url)


def build_finish_reasons(payload: object) -> list[str]:
    """The finish reasons of an OpenAI chat completion body (pure)."""
    choices = payload.get("choices") if isinstance(payload, Mapping) else None
    if not isinstance(choices, list):
        return []
    return [
        str(choice["finish_reason"])
        for choice in choices
        if isinstance(choice, Mapping) and choice.get("finish_reason")
    ]


def build_chat_response_attributes(payload: object) -> dict[str, AttributeValue]:
    """``gen_ai.response.{id,model,finish_reasons}`` of an OpenAI chat completion body;
    whatever is missing or malformed is left out (pure)."""
    if not isinstance(payload, Mapping):
        return {}
    attributes: dict[str, AttributeValue] = {}
    if isinstance(response_id := payload.get("id"), str):
        attributes["gen_ai.response.id"] = response_id
    if isinstance(model := payload.get("model"), str):
        attributes["gen_ai.response.model"] = model
    if reasons := build_finish_reasons(payload):
        attributes["gen_ai.response.finish_reasons"] = reasons
    return attributes


def build_error_type(error: BaseException) -> str:
    """``error.type``: the upstream status or failure kind, else the exception's class name."""
    if isinstance(error, UpstreamError):
        if error.kind == "status" and error.status is not None:
            return str(error.status)
        return error.kind
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return type(error).__qualname__


def _text_parts(text: str) -> list[dict[str, str]]:
    return [{"type": "text", "content": redact(text)}]


def build_input_messages(messages: Sequence[Message]) -> str:
    """``gen_ai.input.messages`` as a JSON string, every text redacted."""
    return json.dumps(
        [{"role": m.role, "parts": _text_parts(m.content)} for m in messages], ensure_ascii=False
    )


def build_output_messages(text: str, finish_reason: str | None) -> str:
    """``gen_ai.output.messages`` of one choice as a JSON string, the text redacted."""
    message = {"role": "assistant", "parts": _text_parts(text), "finish_reason": finish_reason}
    return json.dumps([message], ensure_ascii=False)


def build_documents(documents: Sequence[RetrievedDocument]) -> str:
    """``gen_ai.retrieval.documents``: ids and scores as a JSON string (pure)."""
    return json.dumps([{"id": d.passage_id, "score": round(d.score, 4)} for d in documents])
