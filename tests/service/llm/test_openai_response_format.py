"""Structured output on the wire: what ``response_format`` the OpenAI client sends, and the
one fallback when an upstream answers 400 to it (httpx.MockTransport as the upstream)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from prompting.rendering import Message
from service.errors import UpstreamError
from service.llm.chat import ChatRequest, ResponseFormat
from service.llm.openai_chat import OpenAIChatModel, ResponseFormatMode, build_response_format

SCHEMA = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}
WANTED = ResponseFormat(name="triage", schema=SCHEMA, strict=True)


@pytest.mark.parametrize(
    ("wanted", "mode", "expected"),
    [
        pytest.param(
            WANTED,
            "json_schema",
            {
                "type": "json_schema",
                "json_schema": {"name": "triage", "schema": SCHEMA, "strict": True},
            },
            id="json_schema",
        ),
        pytest.param(WANTED, "json_object", {"type": "json_object"}, id="json_object"),
        pytest.param(WANTED, "none", None, id="none"),
        pytest.param(None, "json_schema", None, id="free-text"),
    ],
)
def test_build_response_format(
    wanted: ResponseFormat | None, mode: ResponseFormatMode, expected: dict[str, Any] | None
) -> None:
    assert build_response_format(wanted, mode) == expected


class Upstream:
    """Answers 400 to any response_format when `rejects_format`; records every body."""

    def __init__(self, *, rejects_format: bool, status: int = 400) -> None:
        self.rejects_format = rejects_format
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.keys: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.keys.append(request.headers.get("idempotency-key"))
        if self.rejects_format and "response_format" in body:
            return httpx.Response(self.status, json={"error": {"message": "unsupported"}})
        message = {"role": "assistant", "content": '{"ok": true}'}
        return httpx.Response(200, json={"choices": [{"message": message}], "usage": {}})


def _request(model: str = "gpt-test", wanted: ResponseFormat | None = WANTED) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[Message("system", "Reply in JSON."), Message("user", "ok?")],
        temperature=0.0,
        max_tokens=64,
        timeout_seconds=5.0,
        question="ok?",
        response_format=wanted,
        idempotency_key="req-1",
    )


async def _complete(upstream: Upstream, *requests: ChatRequest, mode: ResponseFormatMode) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as http:
        model = OpenAIChatModel(http, "http://upstream/v1", None, response_format_mode=mode)
        for request in requests:
            reply = await model.complete(request)
            assert reply.text == '{"ok": true}'


@pytest.mark.asyncio
async def test_a_supporting_upstream_gets_the_json_schema() -> None:
    upstream = Upstream(rejects_format=False)
    await _complete(upstream, _request(), _request(wanted=None), mode="json_schema")

    with_format, free_text = upstream.bodies
    assert with_format["response_format"]["type"] == "json_schema"
    assert with_format["response_format"]["json_schema"]["schema"] == SCHEMA
    assert "response_format" not in free_text


@pytest.mark.asyncio
async def test_a_400_to_the_format_is_asked_again_without_it_and_remembered_per_model() -> None:
    upstream = Upstream(rejects_format=True)
    await _complete(
        upstream, _request(), _request(), _request(model="gpt-other"), mode="json_schema"
    )

    sent = ["response_format" in body for body in upstream.bodies]
    # first: rejected, asked again without; second: the model is known; another model tries.
    assert sent == [True, False, False, True, False]
    # the body without the format is another request: it has its own key
    assert upstream.keys[:2] == ["req-1", "req-1-plain"]


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [401, 404, 422, 500])
async def test_other_failures_are_not_a_format_negotiation(status: int) -> None:
    upstream = Upstream(rejects_format=True, status=status)
    with pytest.raises(UpstreamError) as caught:
        await _complete(upstream, _request(), mode="json_schema")

    assert caught.value.status == status
    assert len(upstream.bodies) == 1


@pytest.mark.asyncio
async def test_mode_none_sends_no_format() -> None:
    upstream = Upstream(rejects_format=True)
    await _complete(upstream, _request(), mode="none")

    assert ["response_format" in body for body in upstream.bodies] == [False]


@pytest.mark.asyncio
async def test_a_400_either_way_is_the_upstream_rejecting_the_request() -> None:
    def always_400(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(400, json={"error": {"message": "bad request"}})

    bodies: list[dict[str, Any]] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(always_400)) as http:
        model = OpenAIChatModel(http, "http://upstream/v1", None)
        for _ in range(2):
            with pytest.raises(UpstreamError) as caught:
                await model.complete(_request())
            assert caught.value.status == 400

    # Not remembered as "no format support": the second request tries the format again.
    assert ["response_format" in body for body in bodies] == [True, False, True, False]
