"""SSE rendering, keep-alive, and the OpenAI chunk builder for the façade (pure parts)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from service.answering.outcome import Outcome
from service.answering.schemas import AnswerResponse, Citation, Usage
from service.answering.stream_events import Delta, Failed, Final
from service.errors import UpstreamError
from service.http.openai_chunks import (
    DONE,
    ChunkContext,
    build_event_chunks,
    build_role_chunk,
    render_chunk_event,
)
from service.http.sse import KEEPALIVE, render_event, send_with_keepalive


def _answer(outcome: Outcome = Outcome.ANSWERED, answer: str = "Five days. [1]") -> AnswerResponse:
    return AnswerResponse(
        request_id="req-1",
        prompt="policy-qa",
        version="1.2.0",
        model="gpt-4o-mini",
        outcome=outcome,
        answer=answer,
        citations=[Citation(id="refunds#1", source="refunds.md", score=0.8)],
        usage=Usage(input_tokens=10, output_tokens=4, cost_usd=0.0),
        cache_hit=False,
        latency_ms=12.0,
    )


CONTEXT = ChunkContext("chatcmpl-1", 1700000000, "prompts/policy-qa@1.2.0", include_usage=True)


def test_sse_events_name_delta_answer_and_error() -> None:
    assert render_event(Delta("Five")) == b'event: delta\ndata: {"text": "Five"}\n\n'
    answer = render_event(Final(_answer())).decode()
    assert answer.startswith("event: answer\ndata: ")
    assert json.loads(answer.split("data: ", 1)[1])["outcome"] == "answered"
    failed = render_event(
        Failed("req-1", Outcome.UNAVAILABLE, UpstreamError("broke", kind="reset"))
    )
    name, data = failed.decode().strip().split("\n")
    assert name == "event: error"
    body = json.loads(data[6:])
    assert body["outcome"] == "unavailable" and body["request_id"] == "req-1"
    assert body["status"] >= 500


@pytest.mark.asyncio
async def test_a_quiet_stream_gets_keep_alive_comments() -> None:
    async def slow() -> AsyncIterator[bytes]:
        yield b"a"
        await asyncio.sleep(0.25)
        yield b"b"

    sent = [item async for item in send_with_keepalive(slow(), keepalive_seconds=0.05)]
    assert sent[0] == b"a" and sent[-1] == b"b"
    assert KEEPALIVE in sent[1:-1]


@pytest.mark.asyncio
async def test_closing_the_sender_closes_the_events() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x"
                await asyncio.sleep(0.01)
        finally:
            closed.set()

    sender = send_with_keepalive(endless(), keepalive_seconds=1.0)
    assert await anext(sender) == b"x"
    await sender.aclose()  # type: ignore[attr-defined]
    assert closed.is_set()


def test_openai_chunks_of_an_answered_stream() -> None:
    role = build_role_chunk(CONTEXT)
    assert role["object"] == "chat.completion.chunk" and role["model"] == CONTEXT.model
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    (delta,) = build_event_chunks(Delta("Five"), CONTEXT)
    assert isinstance(delta, dict) and delta["choices"][0]["delta"] == {"content": "Five"}
    last, usage, done = build_event_chunks(Final(_answer()), CONTEXT)
    assert isinstance(last, dict) and last["choices"][0]["finish_reason"] == "stop"
    assert last["prompt_rollouts"]["outcome"] == "answered"
    assert last["prompt_rollouts"]["citations"][0]["id"] == "refunds#1"
    assert isinstance(usage, dict) and usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
    assert done == DONE and render_chunk_event(done) == b"data: [DONE]\n\n"


def test_openai_chunks_of_a_refused_stream_without_usage() -> None:
    context = ChunkContext("c", 1, "prompts/p@1.0.0")
    items = build_event_chunks(Final(_answer(Outcome.REFUSED, "I can't help.")), context)
    assert len(items) == 2 and items[-1] == DONE
    last = items[0]
    assert isinstance(last, dict) and last["choices"][0]["finish_reason"] == "content_filter"
    assert last["prompt_rollouts"]["answer"] == "I can't help."


def test_a_broken_stream_becomes_an_openai_error_without_done() -> None:
    failed = Failed("req-9", Outcome.UNAVAILABLE, UpstreamError("model x: broke", kind="reset"))
    (item,) = build_event_chunks(failed, CONTEXT)
    assert isinstance(item, dict)
    assert item["error"]["type"] == "server_error" and item["error"]["code"] == "unavailable"
    assert json.loads(render_chunk_event(item)[6:])["error"]["request_id"] == "req-9"
