"""The OpenAI client's side of tools over real HTTP: `tools` sent, `tool_calls` read, and a
malformed `tool_calls` is a malformed reply (a ModelError), never a crash."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from prompting.rendering import Message
from service.errors import UpstreamError
from service.llm import ChatRequest, OpenAIChatModel
from service.llm.chat import ToolCall
from tests.support.servers import serve_in_thread

pytestmark = pytest.mark.integration

TOOLS = ({"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}},)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    reply: dict[str, Any] = {}
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        seen.append(await request.json())
        return {"choices": [{"message": reply["message"]}], "usage": {}}

    with serve_in_thread(app) as url:
        yield f"{url}/v1", seen, reply


def _request(**extra: Any) -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=[Message("system", "s"), Message("user", "q")],
        temperature=0.0,
        max_tokens=10,
        timeout_seconds=5.0,
        question="q",
        tools=TOOLS,
        **extra,
    )


@pytest.mark.asyncio
async def test_tools_are_sent_and_tool_calls_read(
    upstream: tuple[str, list[dict[str, Any]], dict[str, Any]],
) -> None:
    url, seen, reply = upstream
    reply["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}
        ],
    }
    turn = {"role": "tool", "tool_call_id": "c0", "content": "r"}
    async with httpx.AsyncClient() as http:
        response = await OpenAIChatModel(http, url, None).complete(
            _request(turns=(turn,), tool_choice="none")
        )
    assert response.tool_calls == (ToolCall("c1", "t", "{}"),) and response.text == ""
    assert seen[-1]["tools"] == list(TOOLS) and seen[-1]["tool_choice"] == "none"
    assert seen[-1]["messages"][-1] == turn


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "tool_calls",
    ["x", [{"id": 1, "function": {"name": "t"}}], [{"function": {"name": "t"}}]],
)
async def test_malformed_tool_calls_are_a_malformed_reply(
    upstream: tuple[str, list[dict[str, Any]], dict[str, Any]], tool_calls: Any
) -> None:
    url, _, reply = upstream
    reply["message"] = {"role": "assistant", "content": None, "tool_calls": tool_calls}
    async with httpx.AsyncClient() as http:
        with pytest.raises(UpstreamError) as failed:
            await OpenAIChatModel(http, url, None).complete(_request())
    assert failed.value.kind == "malformed"
