"""The fake model streams token by token (OpenAI chunks, usage, [DONE]) and breaks on demand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.streaming import build_stream_events, split_tokens
from tests.support.servers import serve_in_thread

MESSAGES = [
    {"role": "system", "content": "Answer from the context."},
    {"role": "user", "content": "CONTEXT:\n[1] (a.md) Refunds take five days.\n\nQUESTION: How?"},
]


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with serve_in_thread(create_fake_model_app(FakeModelState())) as url:
        yield url


@pytest.fixture(autouse=True)
def healed(fake: str) -> None:
    httpx.delete(f"{fake}/admin/faults").raise_for_status()


def _chunks(text: str) -> list[Any]:
    return [
        line[6:] if line[6:] == "[DONE]" else json.loads(line[6:])
        for line in text.splitlines()
        if line.startswith("data: ")
    ]


def _ask(fake: str, **extra: Any) -> httpx.Response:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, **extra}
    return httpx.post(f"{fake}/v1/chat/completions", json=body, timeout=5)


def test_tokens_rebuild_the_text() -> None:
    assert split_tokens(" Refunds  take five\ndays. [1] ") == [
        " Refunds",
        "  take",
        " five",
        "\ndays.",
        " [1]",
        " ",
    ]
    events = build_stream_events(
        "a b", completion_id="c", created=1, model="m", usage={}, include_usage=False
    )
    assert events[-1] == b"data: [DONE]\n\n" and len(events) == 5


def test_a_stream_carries_the_plain_answer_token_by_token(fake: str) -> None:
    plain = httpx.post(
        f"{fake}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES}
    ).json()
    response = _ask(fake, stream_options={"include_usage": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = _chunks(response.text)
    assert chunks[-1] == "[DONE]"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content = [c["choices"][0]["delta"].get("content") or "" for c in chunks[:-2]]
    assert "".join(content) == plain["choices"][0]["message"]["content"]
    assert sum(1 for piece in content if piece) >= 4  # token by token
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-2]["choices"] == [] and chunks[-2]["usage"] == plain["usage"]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks[:-1])


def test_without_include_usage_there_is_no_usage_chunk(fake: str) -> None:
    chunks = _chunks(_ask(fake).text)
    assert all("usage" not in c for c in chunks[:-1])


def test_reset_drops_the_connection_mid_stream(fake: str) -> None:
    httpx.post(f"{fake}/admin/faults", json={"reset": True}).raise_for_status()
    received = b""
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    with (  # noqa: PT012 - the break is in the read
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{fake}/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        for data in response.iter_bytes():
            received += data
    assert b"chat.completion.chunk" in received and b"[DONE]" not in received


def test_malformed_sends_a_broken_chunk_and_ends(fake: str) -> None:
    httpx.post(f"{fake}/admin/faults", json={"malformed": True}).raise_for_status()
    text = _ask(fake).text
    assert "[DONE]" not in text
    with pytest.raises(json.JSONDecodeError):
        _chunks(text)


def test_an_error_status_comes_before_the_stream(fake: str) -> None:
    httpx.post(f"{fake}/admin/faults", json={"status": 503, "retry_after": 2}).raise_for_status()
    response = _ask(fake)
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
