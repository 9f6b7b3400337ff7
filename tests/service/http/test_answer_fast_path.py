"""The plain-ASGI ``POST /v1/answers``: which requests it takes, and that every response
is the one FastAPI's route gives (same app, same upstream, the fast path removed)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException

from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.faults import Faults
from service.answering.schemas import AnswerRequest
from service.app import create_app
from service.errors import PromptNotFoundError, ServiceError, UpstreamRejectedError
from service.http import answer_fast_path
from service.http.answer_fast_path import (
    AnswerFastPath,
    decide_plain_answer,
    find_exception_handler,
)
from service.http.auth import hash_key
from service.http.routers import answers
from tests.support.servers import serve_in_thread

from .routers.conftest import build_settings

pytestmark = pytest.mark.integration

JSON = (b"content-type", b"application/json")
ASK: dict[str, Any] = {
    "prompt": "policy-qa",
    "question": "Can I refund a digital item after two weeks?",
    "variables": {"tone": "formal"},
}
PLAIN = json.dumps(ASK).encode()


@pytest.mark.parametrize(
    ("headers", "body", "taken"),
    [
        ([JSON], PLAIN, True),
        ([(b"content-type", b"application/json; charset=utf-8")], PLAIN, True),
        ([(b"content-type", b"Application/JSON")], PLAIN, True),
        ([(b"host", b"x"), JSON, (b"authorization", b"Bearer k")], PLAIN, True),
        ([], PLAIN, False),
        ([(b"content-type", b"text/plain")], PLAIN, False),
        ([(b"content-type", b"application/json; charset=latin-1")], PLAIN, False),
        ([(b"content-type", b"application/merge-patch+json")], PLAIN, False),
        ([JSON, JSON], PLAIN, False),
        ([JSON, (b"x-prompt-version", b"1.1.0")], PLAIN, False),
        ([JSON, (b"x-no-shadow", b"true")], PLAIN, False),
        ([JSON, (b"idempotency-key", b"k-1")], PLAIN, False),
        ([JSON], b"", False),
        ([JSON], b"{", False),
        ([JSON], b"\xff\xfe{}", False),
        ([JSON], b"[]", False),
        ([JSON], b"[" * 100_000 + b"]" * 100_000, False),
        ([JSON], json.dumps({**ASK, "stream": True}).encode(), False),
        ([JSON], json.dumps({**ASK, "extra": 1}).encode(), False),
        ([JSON], json.dumps({**ASK, "question": " \u200b "}).encode(), False),
        ([JSON], json.dumps({**ASK, "variables": {"tone": ["a"]}}).encode(), False),
        ([JSON], json.dumps({**ASK, "version": "latest"}).encode(), False),
    ],
    ids=[
        "plain",
        "charset-utf-8",
        "content-type-case",
        "other-headers",
        "no-content-type",
        "not-json",
        "other-charset",
        "json-suffix-type",
        "two-content-types",
        "pinned-header",
        "no-shadow-header",
        "idempotency-key",
        "empty-body",
        "broken-json",
        "not-utf-8",
        "array",
        "deep-nesting",
        "stream",
        "unknown-field",
        "invisible-question",
        "object-variable",
        "bad-version",
    ],
)
def test_only_plain_requests_are_taken(
    headers: list[tuple[bytes, bytes]], body: bytes, taken: bool
) -> None:
    decided = decide_plain_answer(headers, body)
    assert (decided is not None) is taken
    if decided is not None:
        assert decided == AnswerRequest.model_validate_json(body)


async def _handler(request: Any, error: Exception) -> Any:
    return error


@pytest.mark.parametrize(
    ("handlers", "error", "expected"),
    [
        ({PromptNotFoundError: "own"}, PromptNotFoundError("x"), "own"),
        ({ServiceError: "base"}, PromptNotFoundError("x"), "base"),
        ({ServiceError: "base", PromptNotFoundError: "own"}, PromptNotFoundError("x"), "own"),
        ({ServiceError: "base"}, UpstreamRejectedError("x"), "base"),
        ({ServiceError: "base"}, KeyError("x"), None),
        ({Exception: "server-error", 500: "status"}, KeyError("x"), None),
        ({404: "status", HTTPException: "class"}, HTTPException(404), "status"),
        ({409: "status", HTTPException: "class"}, HTTPException(404), "class"),
    ],
    ids=[
        "exact",
        "base-class",
        "nearest",
        "sibling",
        "unhandled",
        "exception-is-outer",
        "status-first",
        "other-status",
    ],
)
def test_exception_handlers_are_picked_as_starlette_picks_them(
    handlers: dict[Any, Any], error: Exception, expected: str | None
) -> None:
    found: object = find_exception_handler(handlers, error)
    assert found == expected


WEB_KEY, OPS_KEY = "pr_web-key-0001", "pr_ops-key-0002"


def _without_fast_path(app: FastAPI) -> FastAPI:
    fast: object = AnswerFastPath
    app.user_middleware = [m for m in app.user_middleware if m.cls is not fast]
    return app


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, FakeModelState]]:
    state = FakeModelState()
    with serve_in_thread(create_fake_model_app(state)) as url:
        yield url, state


@pytest.fixture(scope="module")
def clients(
    upstream: tuple[str, FakeModelState], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, TestClient]]:
    """The app, and the same app without the fast path, against one fake model."""
    keys = tmp_path_factory.mktemp("keys") / "api-keys.yaml"
    keys.write_text(
        f"- {{id: web, sha256: {hash_key(WEB_KEY)}, tenant: shop, prompts: [policy-qa]}}\n"
        f"- {{id: ops, sha256: {hash_key(OPS_KEY)}, tenant: ops, prompts: ['*']}}\n"
    )
    settings = build_settings(
        model_base_url=f"{upstream[0]}/v1", auth_mode="api-key", api_keys_file=keys
    )
    with (
        TestClient(create_app(settings)) as fast,
        TestClient(_without_fast_path(create_app(settings))) as route,
    ):
        yield fast, route


def _raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


#: name → (body, extra headers, served by the fast path)
CASES: dict[str, tuple[bytes, dict[str, str], bool]] = {
    "plain": (PLAIN, {}, True),
    "user": (_raw({**ASK, "user": "customer-42"}), {}, True),
    "version-in-body": (_raw({**ASK, "version": "1.1.0"}), {}, True),
    "unknown-version": (_raw({**ASK, "version": "9.9.9"}), {}, True),
    "unknown-prompt": (_raw({**ASK, "prompt": "no-such-prompt"}), {}, True),
    "forbidden-prompt": (_raw({**ASK, "prompt": "other"}), {"authorization": WEB_KEY}, True),
    "undeclared-variable": (_raw({**ASK, "variables": {"nope": 1}}), {}, True),
    "off-topic": (_raw({**ASK, "question": "What is the capital of France?"}), {}, True),
    "pinned": (PLAIN, {"x-prompt-version": "1.1.0"}, False),
    "bad-pin": (PLAIN, {"x-prompt-version": "latest"}, False),
    "no-shadow": (PLAIN, {"x-no-shadow": "true"}, False),
    "broken-json": (b'{"prompt": ', {}, False),
    "text-plain": (PLAIN, {"content-type": "text/plain"}, False),
    "unknown-field": (_raw({**ASK, "extra": True}), {}, False),
    "empty": (b"", {}, False),
    "deep-nesting": (b'{"prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", {}, False),
    "stream": (_raw({**ASK, "stream": True}), {}, False),
}
#: Fields that differ between any two answers, whoever serves them.
_VOLATILE = ("latency_ms",)


def _normalised(response: Any) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "date")}
    if headers.get("content-type", "").startswith("text/event-stream"):
        return response.status_code, headers, "events"
    try:
        body = response.json()
    except ValueError:
        return response.status_code, headers, response.text
    if isinstance(body, dict):
        for field in _VOLATILE:
            body.pop(field, None)
    return response.status_code, headers, body


def _send(client: TestClient, name: str) -> Any:
    body, extra, _ = CASES[name]
    key = extra.get("authorization", OPS_KEY)
    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {key}",
        "x-request-id": f"equivalence-{name}",
        **{k: v for k, v in extra.items() if k != "authorization"},
    }
    return client.post("/v1/answers", content=body, headers=headers)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Request ids the fast path answered."""
    seen: list[str] = []
    real: Callable[..., Awaitable[Any]] = answers.answer_plainly

    async def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(args[2])
        return await real(*args, **kwargs)

    monkeypatch.setattr(answer_fast_path, "answer_plainly", counting)
    return seen


@pytest.mark.parametrize("name", list(CASES))
def test_every_response_is_the_routes_own(
    clients: tuple[TestClient, TestClient], served: list[str], name: str
) -> None:
    fast, route = clients
    got, want = _send(fast, name), _send(route, name)
    assert _normalised(got) == _normalised(want)
    assert served == ([f"equivalence-{name}"] if CASES[name][2] else [])


def test_upstream_failures_become_the_same_problems(
    clients: tuple[TestClient, TestClient],
    upstream: tuple[str, FakeModelState],
    served: list[str],
) -> None:
    fast, route = clients
    _, state = upstream
    state.set_faults(Faults(status=400))
    try:
        got, want = _send(fast, "plain"), _send(route, "plain")
    finally:
        state.set_faults(Faults())
    assert got.status_code == 502 and got.headers["content-type"] == "application/problem+json"
    assert _normalised(got) == _normalised(want)
    assert served == ["equivalence-plain"]


def test_an_unexpected_error_is_the_same_500(
    clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("internal detail")

    # Clients of the same running apps that return a 500 instead of raising the error.
    fast, route = (TestClient(c.app, raise_server_exceptions=False) for c in clients)
    for client in (fast, route):
        resources = client.app.state.resources  # type: ignore[attr-defined]
        monkeypatch.setattr(resources.answers, "answer", broken)
    got, want = _send(fast, "plain"), _send(route, "plain")
    assert got.status_code == 500
    assert "internal detail" not in got.text
    assert _normalised(got) == _normalised(want)


def test_the_route_path_is_the_fast_paths(clients: tuple[TestClient, TestClient]) -> None:
    fast, _ = clients
    schema = fast.get("/openapi.json", headers={"authorization": f"Bearer {OPS_KEY}"}).json()
    assert "post" in schema["paths"][answers.ANSWERS_PATH]


def test_the_fast_path_is_the_innermost_middleware(tmp_path: Path) -> None:
    app = create_app(build_settings(prompts_dir=tmp_path))
    innermost: object = app.user_middleware[-1].cls
    assert innermost is AnswerFastPath
