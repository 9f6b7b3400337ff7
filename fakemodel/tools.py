"""Deterministic tool calling for the fake model (pure), and its ``/admin/tools`` knobs.

When a request offers ``tools`` (and ``tool_choice`` is not ``"none"``) and fewer rounds
of tool results than ``rounds`` (default 1) are in the messages, the fake model calls
the first tool (``calls_per_round`` > 1: the offered tools in turn, repeating) with
arguments built from its JSON Schema: strings get the last user message, numbers and
integers 1, booleans true, enums their first value, arrays one such item, objects their
properties filled the same way. ``arguments`` (a raw string) replaces them, e.g. to
send invalid ones. After tool results it answers by quoting them: the text between
each result's ``<<<TOOL RESULT`` marker lines (or the whole tool message).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Protocol

from fastapi import FastAPI
from pydantic import BaseModel, Field

__all__ = ["ToolPlay", "ToolPlayHolder", "add_tool_routes", "build_tool_turn", "fill_schema"]

_RESULT = re.compile(r"<<<TOOL RESULT id=(\S+)>>>\n(.*?)\n<<<END TOOL RESULT id=\1>>>", re.DOTALL)


class ToolPlay(BaseModel):
    """How the fake model calls tools (POST /admin/tools)."""

    rounds: int = Field(1, ge=0, le=20, description="Rounds of tool calls before answering.")
    calls_per_round: int = Field(1, ge=1, le=16, description="Calls in each round.")
    arguments: str | None = Field(None, description="Raw arguments sent instead of built ones.")


class ToolPlayHolder(Protocol):
    """Where the tool knobs in force are kept (the fake model's state)."""

    tool_play: ToolPlay


def fill_schema(schema: Any, question: str) -> Any:
    """A value for `schema`: enums' first value, strings the question, numbers 1 (pure)."""
    if not isinstance(schema, dict):
        return question
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "string")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return [fill_schema(schema.get("items", {}), question)]
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: fill_schema(child, question) for name, child in properties.items()}
    return question


def _quote(messages: Sequence[dict[str, Any]]) -> str:
    quoted: list[str] = []
    for message in messages:
        if message.get("role") != "tool":
            continue
        content = str(message.get("content") or "")
        found = _RESULT.findall(content)
        texts = [text for _, text in found] if found else [content]
        quoted.extend(" ".join(text.split()) for text in texts)
    return "The tool says: " + " | ".join(quoted)


def build_tool_turn(
    body: dict[str, Any], messages: Sequence[dict[str, Any]], play: ToolPlay
) -> dict[str, Any] | None:
    """The assistant message of a tool-using request, or None when tools play no part."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "function" in t]
    results = sum(1 for m in messages if m.get("role") == "assistant" and m.get("tool_calls"))
    has_results = any(m.get("role") == "tool" for m in messages)
    if tools and body.get("tool_choice") != "none" and results < play.rounds:
        question = next(
            (str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"),
            "",
        )
        calls = []
        for index in range(play.calls_per_round):
            function = tools[index % len(tools)]["function"]
            arguments = play.arguments
            if arguments is None:
                arguments = json.dumps(fill_schema(function.get("parameters") or {}, question))
            calls.append(
                {
                    "id": f"call_{results}_{index}",
                    "type": "function",
                    "function": {"name": str(function.get("name")), "arguments": arguments},
                }
            )
        return {"role": "assistant", "content": None, "tool_calls": calls}
    if has_results:
        return {"role": "assistant", "content": _quote(messages)}
    return None


def add_tool_routes(app: FastAPI, holder: ToolPlayHolder) -> None:
    """GET/POST/DELETE /admin/tools on `app`."""

    @app.get("/admin/tools")
    async def current_tools() -> ToolPlay:
        return holder.tool_play

    @app.post("/admin/tools")
    async def set_tools(play: ToolPlay) -> ToolPlay:
        holder.tool_play = play
        return play

    @app.delete("/admin/tools", status_code=204)
    async def reset_tools() -> None:
        holder.tool_play = ToolPlay()
