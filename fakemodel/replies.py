"""What the fake model answers: from the CONTEXT block, an echo of the input, or a template.

``Replies`` is set with ``promptctl fake-model --reply MODE [--reply-template TEXT]`` or
``POST /admin/replies``; :func:`build_reply` is pure.

- ``auto`` (default): prompts with a ``CONTEXT:`` block (or ``[n]`` passages) get the
  ``context`` answer; prompts without one (a summarizer, a classifier) get ``echo``.
- ``context``: the first sentence of passage ``[1]`` with its citation, or
  ``Not covered by policy.`` when there is no passage.
- ``echo``: the *input* of the last user message, cut to ``max_tokens`` words. The input
  is the text under the message's last ``HEADING:`` line (``TICKET:``, ``QUESTION:``,
  ``TEXT:``: capitals, digits, spaces, ``_`` or ``-``, then a colon), or the whole
  message when it has no such line.
- ``template``: ``template`` with ``{input}``, ``{first_sentence}`` (of the input),
  ``{user}`` (the whole last user message) and ``{model}`` filled in, cut to
  ``max_tokens`` words; ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Protocol, Self

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fakemodel.answers import build_answer, parse_context

__all__ = [
    "PLACEHOLDERS",
    "Replies",
    "ReplyHolder",
    "ReplyMode",
    "add_reply_routes",
    "build_reply",
    "find_input",
]

PLACEHOLDERS = ("input", "first_sentence", "user", "model")
_HEADING = re.compile(r"^[A-Z][A-Z0-9 _-]{1,40}:\s*$")
_CONTEXT_HEADING = re.compile(r"^\s*CONTEXT:\s*$", re.MULTILINE)
_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


class ReplyMode(StrEnum):
    """How the fake model composes a chat answer."""

    AUTO = "auto"
    CONTEXT = "context"
    ECHO = "echo"
    TEMPLATE = "template"


class Replies(BaseModel):
    """The reply mode in force (the body of POST /admin/replies)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: ReplyMode = ReplyMode.AUTO
    template: str | None = Field(default=None, min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _template_fits_mode(self) -> Self:
        if (self.mode is ReplyMode.TEMPLATE) != (self.template is not None):
            raise ValueError("mode template needs a template, and a template needs mode template")
        if self.template is not None:
            for match in _FIELD.finditer(self.template):
                name = match.group(1)
                if name is not None and name not in PLACEHOLDERS:
                    allowed = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                    raise ValueError(f"unknown placeholder {{{name}}}: use {allowed}")
        return self


def _last_user(messages: Sequence[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return str((users or list(messages) or [{}])[-1].get("content", "") or "")


def find_input(message: str) -> str:
    """The text under the last `HEADING:` line of a message, or the whole message (pure)."""
    lines = message.splitlines()
    starts = [i for i, line in enumerate(lines) if _HEADING.match(line.strip())]
    body = lines[starts[-1] + 1 :] if starts else lines
    text = "\n".join(body).strip()
    return text or message.strip()


def _cut_words(text: str, max_tokens: int) -> str:
    """The first `max_tokens` words (at least one) of `text`, its spacing kept."""
    words = list(re.finditer(r"\S+", text))
    if not words:
        return ""
    return text[words[0].start() : words[: max(1, max_tokens)][-1].end()]


def build_reply(
    replies: Replies, messages: Sequence[dict[str, Any]], model: str, max_tokens: int
) -> str:
    """The answer to `messages` in the mode of `replies` (pure)."""
    prompt = "\n".join(str(m.get("content", "") or "") for m in messages)
    mode = replies.mode
    if mode is ReplyMode.AUTO:
        has_context = _CONTEXT_HEADING.search(prompt) or parse_context(prompt)
        mode = ReplyMode.CONTEXT if has_context else ReplyMode.ECHO
    if mode is ReplyMode.CONTEXT:
        return build_answer(messages, max_tokens)
    user = _last_user(messages)
    found = find_input(user)
    if mode is ReplyMode.ECHO or replies.template is None:
        return _cut_words(found, max_tokens)
    values = {
        "input": found,
        "first_sentence": _SENTENCE_END.split(found.strip(), maxsplit=1)[0],
        "user": user,
        "model": model,
    }

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        return token[0] if match.group(1) is None else values[match.group(1)]

    return _cut_words(_FIELD.sub(fill, replies.template), max_tokens)


class ReplyHolder(Protocol):
    """Where the reply mode in force is kept (the fake model's state)."""

    replies: Replies


def add_reply_routes(app: FastAPI, holder: ReplyHolder) -> None:
    """GET/POST/DELETE /admin/replies on `app`; `holder.replies` is the mode in force."""

    @app.get("/admin/replies")
    async def current_replies() -> Replies:
        return holder.replies

    @app.post("/admin/replies")
    async def set_replies(replies: Replies) -> Replies:
        holder.replies = replies
        return replies

    @app.delete("/admin/replies", status_code=204)
    async def reset_replies() -> None:
        holder.replies = Replies()
