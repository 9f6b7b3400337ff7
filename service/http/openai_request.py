"""The OpenAI chat-completions request, and its translation into an ``AnswerRequest`` (pure).

::

    ChatCompletionRequest ──build_answer_request──> AnswerRequest  (the /v1/answers pipeline)
                          └─ ChatRequestError(loc, message)  → 422 naming the field

What maps where (docs/api.md, "OpenAI-compatible endpoint"):

- ``model``: ``prompts/<prompt>`` or ``prompts/<prompt>@<version>`` (a pin);
- the last message, a ``user`` one, is the question; earlier ``user``/``assistant`` turns
  become the string variable ``history`` (one ``role: text`` line per turn);
- ``metadata`` (string values, as in the OpenAI API) and ``variables`` (any JSON scalar)
  are the prompt's variables; ``variables`` wins on a name given in both. A metadata string
  is converted to the variable's declared type when every version that may answer declares
  it alike (``"80"`` → 80 for an integer, ``"true"``/``"false"`` for a boolean); otherwise
  it stays a string and the version's own rules judge it;
- ``user`` is the sticky routing key; ``system``/``developer`` messages are refused (the
  prompt version owns the system message), and so are features a prompt cannot honour
  (``n`` > 1, client tools, non-text response formats, log probabilities, audio).

Sampling settings (``temperature``, ``max_tokens``, ``stop``, ``seed``...) are accepted and
ignored: the version owns its model settings. Unknown fields are ignored, as new SDKs add some.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.v1alpha1 import SEMVER_PATTERN, Scalar, VariableType
from service.answering.schemas import AnswerRequest

__all__ = [
    "HISTORY_VARIABLE",
    "MAX_CONTENT_PARTS",
    "MAX_MESSAGES",
    "ChatCompletionRequest",
    "ChatMessage",
    "ChatRequestError",
    "build_answer_request",
    "decide_metadata_value",
    "decide_variable_types",
    "parse_model",
]

#: The template variable earlier turns are passed in.
HISTORY_VARIABLE = "history"
#: Most messages one request may carry (the question and the turns before it).
MAX_MESSAGES = 100
#: Most content parts one message may carry.
MAX_CONTENT_PARTS = 32
_PROMPT = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_SEMVER = SEMVER_PATTERN.removeprefix("^").removesuffix("$")
_MODEL = re.compile(rf"prompts/(?P<prompt>{_PROMPT})(?:@(?P<version>{_SEMVER}))?")
_MODEL_RULE = (
    "model must be `prompts/<prompt>` or `prompts/<prompt>@<version>`, e.g. prompts/faq-bot"
)


class ChatRequestError(ValueError):
    """A request the façade cannot translate: where (a body location) and why."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        self.loc = loc
        self.message = message
        super().__init__(f"{'.'.join(str(part) for part in loc)}: {message}")


class ChatMessage(BaseModel):
    """One message of ``messages`` (only what the façade reads; other fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    role: str = Field(max_length=32)
    content: str | Annotated[list[dict[str, Any]], Field(max_length=MAX_CONTENT_PARTS)] | None = (
        None
    )
    tool_calls: list[Any] | None = None


class ChatCompletionRequest(BaseModel):
    """The body of ``POST /v1/chat/completions``, as the ``openai`` SDK sends it."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(max_length=200, examples=["prompts/faq-bot"])
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    metadata: dict[str, Any] | None = Field(default=None, max_length=64)
    variables: dict[str, Any] | None = Field(default=None, max_length=64)
    user: str | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    n: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    audio: Any = None
    modalities: list[str] | None = None


def parse_model(model: str) -> tuple[str, str | None]:
    """``(prompt, version or None)`` of a ``model`` string; ChatRequestError if malformed."""
    match = _MODEL.fullmatch(model)
    if match is None:
        shown = model if len(model) <= 80 else model[:80] + "..."
        raise ChatRequestError(("model",), f"{_MODEL_RULE}; got {shown!r}")
    return match["prompt"], match["version"]


def _refuse_unsupported(body: ChatCompletionRequest) -> None:
    """ChatRequestError for a feature a prompt version cannot honour (nothing is ignored
    silently that would change the answer's shape)."""
    if body.n not in (None, 1):
        raise ChatRequestError(("n",), "only one choice per request is supported (n=1)")
    for name in ("tools", "functions"):
        if getattr(body, name):
            raise ChatRequestError(
                (name,), "client-side tools are not supported: a prompt version declares its tools"
            )
    for name in ("tool_choice", "function_call"):
        if getattr(body, name) not in (None, "none", "auto"):
            raise ChatRequestError((name,), "client-side tools are not supported")
    kind = (body.response_format or {}).get("type", "text")
    if kind != "text":
        raise ChatRequestError(
            ("response_format",),
            f"response_format {kind!r} is not supported: the prompt version owns the output "
            "format; send {'type': 'text'} or omit it",
        )
    if body.logprobs:
        raise ChatRequestError(("logprobs",), "log probabilities are not available")
    if body.audio is not None or any(m != "text" for m in body.modalities or ()):
        raise ChatRequestError(("modalities",), "only text output is supported")


def _text_of(message: ChatMessage, index: int) -> str:
    """The text of a message: a string, or its text parts joined; other parts are refused."""
    content = message.content
    if content is None:
        raise ChatRequestError(("messages", index, "content"), "content must be text, got null")
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for number, part in enumerate(content):
        kind = part.get("type")
        if kind != "text":
            raise ChatRequestError(
                ("messages", index, "content", number),
                f"content part type {str(kind)[:40]!r} is not supported: this endpoint answers "
                "text questions; send text parts only",
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise ChatRequestError(
                ("messages", index, "content", number, "text"), "a text part needs a string `text`"
            )
        texts.append(text)
    return "\n".join(texts)


def _turns(messages: list[ChatMessage]) -> list[tuple[str, str]]:
    """Every message as (role, text); refuses system prompts, tools and a final non-user turn."""
    turns: list[tuple[str, str]] = []
    for index, message in enumerate(messages):
        if message.role in ("system", "developer"):
            raise ChatRequestError(
                ("messages", index, "role"),
                f"{message.role} messages are not accepted: the prompt version owns the system "
                "message; send only user (and earlier assistant) messages",
            )
        if message.role not in ("user", "assistant") or message.tool_calls:
            raise ChatRequestError(
                ("messages", index, "role"),
                f"role {message.role[:32]!r} is not supported: send user and assistant "
                "messages only (tool calls are made by the prompt version, not the client)",
            )
        turns.append((message.role, _text_of(message, index)))
    if turns[-1][0] != "user":
        raise ChatRequestError(
            ("messages", len(turns) - 1, "role"),
            "the last message must be the user's question (role user)",
        )
    return turns


_INTEGER = re.compile(r"[-+]?\d{1,18}")


def decide_metadata_value(text: str, kind: VariableType | None) -> Scalar:
    """A metadata string as a value of the declared type, when it reads as one (else as is)."""
    if kind is VariableType.INTEGER and _INTEGER.fullmatch(text.strip()):
        return int(text)
    if kind is VariableType.NUMBER:
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if kind is VariableType.BOOLEAN and text in ("true", "false"):
        return text == "true"
    return text


def _variables(body: ChatCompletionRequest, types: Mapping[str, VariableType]) -> dict[str, Any]:
    """``metadata`` (strings only, typed by `types`) overlaid by ``variables``."""
    merged: dict[str, Any] = {}
    for name, value in (body.metadata or {}).items():
        if not isinstance(value, str):
            raise ChatRequestError(
                ("metadata", name),
                "metadata values are strings (as in the OpenAI API); send numbers, booleans "
                "and null in the `variables` field instead",
            )
        merged[name] = decide_metadata_value(value, types.get(name))
    merged.update(body.variables or {})
    return merged


def _answer_field_loc(loc: tuple[str | int, ...], question_index: int) -> tuple[str | int, ...]:
    """Where a field of the built AnswerRequest came from in the chat request."""
    head = loc[0] if loc else ""
    places: dict[str | int, tuple[str | int, ...]] = {
        "question": ("messages", question_index, "content"),
        "prompt": ("model",),
        "version": ("model",),
        "user": ("user",),
    }
    return places.get(head, loc)


def build_answer_request(
    body: ChatCompletionRequest,
    types: Callable[[str, str | None], Mapping[str, VariableType]] = lambda _p, _v: {},
) -> AnswerRequest:
    """The /v1/answers request a chat completion request stands for; ChatRequestError if none.

    `types(prompt, version)` gives the variable types every version that may answer agrees
    on (metadata strings are converted to them).
    """
    _refuse_unsupported(body)
    prompt, version = parse_model(body.model)
    turns = _turns(body.messages)
    variables = _variables(body, types(prompt, version) if body.metadata else {})
    if len(turns) > 1:
        if HISTORY_VARIABLE in variables:
            raise ChatRequestError(
                ("messages",),
                f"earlier turns are passed as the variable {HISTORY_VARIABLE!r}, which the "
                "request also sets in metadata or variables: send one or the other",
            )
        variables[HISTORY_VARIABLE] = "\n".join(f"{role}: {text}" for role, text in turns[:-1])
    try:
        return AnswerRequest(
            prompt=prompt,
            version=version,
            question=turns[-1][1],
            variables=variables,
            user=body.user,
        )
    except ValidationError as error:
        first = error.errors()[0]
        loc = _answer_field_loc(tuple(first["loc"]), len(turns) - 1)
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ChatRequestError(loc, message) from error


def decide_variable_types(
    declarations: Iterable[Mapping[str, VariableType]],
) -> dict[str, VariableType]:
    """The variables every one of `declarations` declares, with the type they agree on."""
    agreed: dict[str, VariableType] | None = None
    for declared in declarations:
        if agreed is None:
            agreed = dict(declared)
        else:
            agreed = {n: t for n, t in agreed.items() if declared.get(n) is t}
    return agreed or {}
