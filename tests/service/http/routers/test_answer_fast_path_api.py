"""The plain-ASGI ``POST /v1/answers`` over the app: every response is the one FastAPI's
route gives (same app, same upstream, the fast path removed), and it serves only plain ones."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fakemodel.app import FakeModelState
from fakemodel.faults import Faults
from service.app import create_app
from service.http import answer_fast_path
from service.http.answer_fast_path import AnswerFastPath
from service.http.auth import hash_key
from service.http.routers import answers

from .conftest import build_settings

pytestmark = pytest.mark.integration

ASK: dict[str, Any] = {
    "prompt": "policy-qa",
    "question": "Can I refund a digital item after two weeks?",
    "variables": {"tone": "formal"},
}
PLAIN = json.dumps(ASK).encode()
WEB_KEY, OPS_KEY = "pr_web-key-0001", "pr_ops-key-0002"


def _without_fast_path(app: FastAPI) -> FastAPI:
    fast: object = AnswerFastPath
    app.user_middleware = [m for m in app.user_middleware if m.cls is not fast]
    return app


@pytest.fixture(scope="module")
def clients(
    fake_model: tuple[str, FakeModelState], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, TestClient]]:
    """The app, and the same app without the fast path, against one fake model."""
    keys = tmp_path_factory.mktemp("keys") / "api-keys.yaml"
    keys.write_text(
        f"- {{id: web, sha256: {hash_key(WEB_KEY)}, tenant: shop, prompts: [policy-qa]}}\n"
        f"- {{id: ops, sha256: {hash_key(OPS_KEY)}, tenant: ops, prompts: ['*']}}\n"
    )
    settings = build_settings(
        model_base_url=f"{fake_model[0]}/v1", auth_mode="api-key", api_keys_file=keys
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
    fake_model: tuple[str, FakeModelState],
    served: list[str],
) -> None:
    fast, route = clients
    _, state = fake_model
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
