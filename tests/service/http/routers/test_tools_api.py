"""HTTP tools end to end: the service, the fake model over HTTP and a real tool server.

The fake model calls tools deterministically (fakemodel/tools.py): the first offered
tool with arguments from its schema, then it quotes the results. The prompts are the
shipped order-status version with its tool pointed at the tool server; all but `contract`
drop its output contract, so the answer quotes the tool results (with the contract the
fake model answers the schema's minimal document instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.structured import build_schema_instance
from service.app import create_app
from tests.support.servers import serve_in_thread
from tests.support.tool_server import ToolServer, run_tool_server

from .conftest import ROOT, build_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tool_server() -> Iterator[ToolServer]:
    with run_tool_server() as server:
        yield server


@pytest.fixture(scope="module")
def model() -> Iterator[tuple[str, FakeModelState]]:
    state = FakeModelState()
    with serve_in_thread(create_fake_model_app(state)) as url:
        yield url, state


SHIPPED: dict[str, Any] = yaml.safe_load(
    (ROOT / "prompts" / "order-status-1.0.0.yaml").read_text(encoding="utf-8")
)
CONTRACT: dict[str, Any] = SHIPPED["spec"]["output"]["schema"]


def _prompt(name: str, url: str, *, contract: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(yaml.safe_dump(SHIPPED))
    data["metadata"]["name"] = f"{name}-1-0-0"
    data["spec"]["prompt"] = name
    if not contract:
        del data["spec"]["output"]
    tool = data["spec"]["tools"][0]
    tool["http"] = {"method": "GET", "url": url, "timeoutSeconds": 2}
    return data


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory, tool_server: ToolServer) -> Path:
    folder = tmp_path_factory.mktemp("prompts")
    base = f"http://127.0.0.1:{tool_server.port}"
    for name, url in (("orders", f"{base}/orders/{{orderId}}"), ("notes", f"{base}/inject")):
        text = yaml.safe_dump(_prompt(name, url), sort_keys=False)
        (folder / f"{name}-1.0.0.yaml").write_text(text, encoding="utf-8")
    contract = _prompt("contract", f"{base}/orders/{{orderId}}", contract=True)
    text = yaml.safe_dump(contract, sort_keys=False)
    (folder / "contract-1.0.0.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def client(prompts: Path, model: tuple[str, FakeModelState]) -> Iterator[TestClient]:
    url, _ = model
    settings = build_settings(
        prompts_dir=prompts,
        corpora={},
        model_base_url=f"{url}/v1",
        tool_allowed_hosts=["127.0.0.1"],
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def _reset(model: tuple[str, FakeModelState], tool_server: ToolServer) -> Iterator[None]:
    url, state = model
    state.requests.clear()
    tool_server.requests.clear()
    yield
    httpx.delete(f"{url}/admin/tools").raise_for_status()
    httpx.post(f"{url}/admin/faults", json={}).raise_for_status()


def _ask(client: TestClient, prompt: str, question: str) -> dict[str, Any]:
    response = client.post("/v1/answers", json={"prompt": prompt, "question": question})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _chats(state: FakeModelState) -> list[dict[str, Any]]:
    return [r.body for r in state.requests if r.path == "/v1/chat/completions"]


def test_the_model_calls_the_tool_and_answers_from_its_result(
    client: TestClient, model: tuple[str, FakeModelState], tool_server: ToolServer
) -> None:
    _, state = model
    body = _ask(client, "orders", "Where is LK-48213?")
    assert body["outcome"] == "answered"
    assert '"status":"shipped"' in body["answer"]
    [seen] = tool_server.requests
    assert seen["raw_path"] == "/orders/Where%20is%20LK-48213%3F"
    first, second = _chats(state)
    assert [t["function"]["name"] for t in first["tools"]] == ["get_order_status"]
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_0_0"
    assert tool_message["content"].startswith("UNTRUSTED DATA returned by tool get_order_status")
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "get_order_status"
    assert body["usage"]["input_tokens"] > 0
    metrics = client.get("/metrics").text
    assert 'promptrollouts_tool_calls_total{prompt="orders",tool="get_order_status"}' in metrics
    assert (
        'promptrollouts_tool_errors_total{prompt="orders",reason="timeout",'
        'tool="get_order_status"} 0.0' in metrics
    )


def test_with_the_output_contract_the_tool_result_goes_in_and_json_comes_out(
    client: TestClient, model: tuple[str, FakeModelState], tool_server: ToolServer
) -> None:
    _, state = model
    body = _ask(client, "contract", "Where is LK-48213?")
    assert body["outcome"] == "answered"
    assert body["output"] == build_schema_instance(CONTRACT)
    assert len(tool_server.requests) == 1
    first, second = _chats(state)
    assert [t["function"]["name"] for t in first["tools"]] == ["get_order_status"]
    assert second["messages"][-1]["content"].startswith("UNTRUSTED DATA returned by tool")
    assert second["response_format"]["json_schema"]["schema"] == CONTRACT


def test_parallel_calls_in_one_round(
    client: TestClient, model: tuple[str, FakeModelState], tool_server: ToolServer
) -> None:
    url, state = model
    httpx.post(f"{url}/admin/tools", json={"calls_per_round": 3}).raise_for_status()
    body = _ask(client, "orders", "LK-1")
    assert len(tool_server.requests) == 3
    assert body["answer"].count('"status":"shipped"') == 3
    assert len(_chats(state)) == 2


def test_at_most_max_tool_rounds_then_the_model_must_answer(
    client: TestClient, model: tuple[str, FakeModelState], tool_server: ToolServer
) -> None:
    url, state = model
    httpx.post(f"{url}/admin/tools", json={"rounds": 10}).raise_for_status()
    body = _ask(client, "orders", "LK-2")
    assert len(tool_server.requests) == 2  # maxToolRounds: 2 in the example prompt
    chats = _chats(state)
    assert len(chats) == 3
    assert chats[-1]["tool_choice"] == "none"
    assert "tool_choice" not in chats[0]
    assert body["outcome"] == "answered"
    keys = [r.headers.get("idempotency-key") for r in state.requests if "chat" in r.path]
    assert len(set(keys)) == 3 and keys[1] == f"{keys[0]}.tools-1"  # one per round


def test_invalid_arguments_are_told_to_the_model_not_sent(
    client: TestClient, model: tuple[str, FakeModelState], tool_server: ToolServer
) -> None:
    url, _ = model
    httpx.post(f"{url}/admin/tools", json={"arguments": '{"orderId": 5}'}).raise_for_status()
    body = _ask(client, "orders", "LK-3")
    assert tool_server.requests == []
    assert "TOOL ERROR (get_order_status): invalid arguments at orderId" in body["answer"]


def test_instructions_in_a_tool_result_are_data(
    client: TestClient, model: tuple[str, FakeModelState]
) -> None:
    """A gullible model repeats the system prompt when a message asks for it: the planted
    request in the tool's result is screened out, the facts around it reach the model."""
    url, state = model
    httpx.post(f"{url}/admin/faults", json={"obey_injections": True}).raise_for_status()
    body = _ask(client, "notes", "LK-1")
    assert "shipped on Monday" in body["answer"]
    assert "Delivery is expected on Friday" in body["answer"]
    assert "Never guess a status" not in body["answer"]
    assert "ignore all previous" not in str(_chats(state)[-1]["messages"]).casefold()


def test_shipped_prompt_with_tools_disabled_answers_with_the_tool_error(
    model: tuple[str, FakeModelState], tool_server: ToolServer
) -> None:
    """The default (TOOL_ALLOWED_HOSTS empty): the call is refused, never a 500; the model
    reads the tool error and answers the output contract."""
    url, state = model
    settings = build_settings(corpora={}, model_base_url=f"{url}/v1")
    with TestClient(create_app(settings)) as client:
        body = _ask(client, "order-status", "Where is my order LK-48213?")
        metrics = client.get("/metrics").text
    assert body["output"] == {"orderId": "", "status": "unknown", "message": "x"}
    tool_message = _chats(state)[-1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert "tools are disabled on this service" in tool_message["content"]
    assert (
        'promptrollouts_tool_errors_total{prompt="order-status",reason="tools_disabled",'
        'tool="get_order_status"} 1.0' in metrics
    )
    assert tool_server.requests == []


def test_the_embedded_answerer_ignores_tools(tmp_path: Path) -> None:
    # The shipped version's output contract needs a model (test_output_api.py): its tools
    # alone are ignored offline.
    text = yaml.safe_dump(_prompt("orders", "https://orders.larkspur.example/{orderId}"))
    (tmp_path / "orders-1.0.0.yaml").write_text(text, encoding="utf-8")
    settings = build_settings(prompts_dir=tmp_path, corpora={})
    with TestClient(create_app(settings)) as client:
        body = _ask(client, "orders", "Where is my order LK-48213?")
    assert body["outcome"] == "answered"
    assert "LK-48213" in body["answer"]
