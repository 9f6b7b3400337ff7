"""The streamed OpenAI-compatible call: SSE parsing, failures before and after the first piece."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from prompting.rendering import Message
from service.errors import UpstreamError
from service.llm.chat import ChatRequest
from service.llm.openai_stream import open_openai_stream, parse_stream_line

URL = httpx.URL("http://model.test/v1/chat/completions")
REQUEST = ChatRequest(
    model="m",
    messages=[Message("user", "hi")],
    temperature=0.0,
    max_tokens=50,
    timeout_seconds=2.0,
    question="hi",
)


def _chunk(content: str | None = None, usage: dict[str, int] | None = None) -> str:
    payload: dict[str, object] = {
        "choices": [] if content is None else [{"delta": {"content": content}}]
    }
    if usage:
        payload["usage"] = usage
    return f"data: {json.dumps(payload)}\n\n"


def _client(status: int, body: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    def reply(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
        return httpx.Response(status, content=body.encode(), headers=headers)

    return httpx.AsyncClient(transport=httpx.MockTransport(reply))


async def _open(client: httpx.AsyncClient) -> tuple[str, list[str]]:
    stream = await open_openai_stream(client, URL, {}, REQUEST, lambda: datetime.now(UTC))
    return stream.first, [piece async for piece in stream.rest]


def test_lines() -> None:
    assert parse_stream_line(": keep-alive") is None
    assert parse_stream_line("") is None
    assert parse_stream_line('data: {"choices": []}') == {"choices": []}
    with pytest.raises(ValueError, match="error"):
        parse_stream_line('data: {"error": {"message": "overloaded"}}')
    with pytest.raises(json.JSONDecodeError):
        parse_stream_line("data: {broken")


@pytest.mark.asyncio
async def test_pieces_and_usage() -> None:
    body = (
        _chunk("")
        + _chunk("Five")
        + _chunk(" days.")
        + _chunk(usage={"prompt_tokens": 7, "completion_tokens": 3})
        + "data: [DONE]\n\n"
    )
    async with _client(200, body) as client:
        stream = await open_openai_stream(client, URL, {}, REQUEST, lambda: datetime.now(UTC))
        assert stream.first == "Five"
        assert [piece async for piece in stream.rest] == [" days."]
    assert (stream.usage.input_tokens, stream.usage.output_tokens) == (7, 3)


@pytest.mark.asyncio
async def test_an_error_status_before_the_first_piece_is_an_upstream_error() -> None:
    async with _client(429, '{"error": {}}', {"Retry-After": "3"}) as client:
        with pytest.raises(UpstreamError) as caught:
            await _open(client)
    assert caught.value.status == 429 and caught.value.retry_after == 3.0


@pytest.mark.asyncio
async def test_a_stream_without_done_breaks_after_the_first_piece() -> None:
    async with _client(200, _chunk("Five") + _chunk(" days")) as client:
        stream = await open_openai_stream(client, URL, {}, REQUEST, lambda: datetime.now(UTC))
        assert stream.first == "Five"
        with pytest.raises(UpstreamError, match="ended early") as caught:
            _ = [piece async for piece in stream.rest]
    assert caught.value.kind == "reset"


@pytest.mark.asyncio
async def test_a_broken_first_chunk_is_malformed() -> None:
    async with _client(200, "data: {broken\n\n") as client:
        with pytest.raises(UpstreamError) as caught:
            await _open(client)
    assert caught.value.kind == "malformed"


@pytest.mark.asyncio
async def test_done_before_any_text_is_an_empty_reply() -> None:
    async with _client(200, _chunk("") + "data: [DONE]\n\n") as client:
        assert await _open(client) == ("", [])
