"""ToolRunner against a real HTTP tool server on 127.0.0.1: results, failures, SSRF at the
socket, and what reaches metrics, spans and logs (never a header secret)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.v1alpha1 import Tool
from service.llm.chat import ToolCall
from service.llm.resilience.deadline import Deadline
from service.telemetry.metrics import Metrics
from service.telemetry.spans import Tracing
from service.tools import ToolRunner, parse_allowlist
from service.tools.arguments import ToolHttpRequest
from service.tools.http_call import ToolCallError, call_http_tool, fetch_addresses
from service.tools.ssrf import IPAddress
from tests.support.tool_server import ToolServer, run_tool_server

pytestmark = pytest.mark.integration

SECRET = "Bearer s3cr3t-token-0123456789"
LOOPBACK = ipaddress.ip_address("127.0.0.1")


@pytest.fixture(scope="module")
def server() -> Iterator[ToolServer]:
    with run_tool_server() as running:
        yield running


def _tool(server: ToolServer, path: str, **http: Any) -> Tool:
    return Tool.model_validate(
        {
            "name": "order_status",
            "description": "Status of an order.",
            "parameters": {
                "type": "object",
                "properties": {"orderId": {"type": "string", "maxLength": 40}},
                "required": ["orderId"],
                "additionalProperties": False,
            },
            "http": {
                "url": f"http://tools.test:{server.port}{path}",
                "headers": [{"name": "Authorization", "valueFrom": {"env": "ORDERS_TOKEN"}}],
                "timeoutSeconds": 1,
                **http,
            },
        }
    )


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """The test's DNS: tools.test and rebind.test are loopback, nothing else resolves."""
    table = {"tools.test": [LOOPBACK], "rebind.test": [LOOPBACK]}
    if host not in table:
        raise OSError(f"{host} does not resolve")
    return table[host]


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
        yield http


def _runner(client: httpx.AsyncClient, hosts: list[str], **kwargs: Any) -> ToolRunner:
    values: dict[str, Any] = {
        "allow": parse_allowlist(hosts),
        "metrics": Metrics(),
        "resolver": _resolve,
        "environ": {"ORDERS_TOKEN": SECRET},
        "secrets_dir": Path("/nonexistent"),
    }
    return ToolRunner(client, **(values | kwargs))


async def _run(runner: ToolRunner, tool: Tool, arguments: str, seconds: float = 5.0) -> str:
    call = ToolCall("call_1", "order_status", arguments)
    return await runner.run(
        "order-status", "1.0.0", {tool.name: tool}, call, Deadline.after(seconds)
    )


def _errors(runner: ToolRunner, reason: str) -> float:
    value = runner.metrics.registry.get_sample_value(
        "promptrollouts_tool_errors_total",
        {"prompt": "order-status", "tool": "order_status", "reason": reason},
    )
    return value or 0.0


@pytest.mark.asyncio
async def test_a_call_reaches_the_checked_address_with_its_secret_header(
    server: ToolServer, client: httpx.AsyncClient
) -> None:
    runner = _runner(client, ["tools.test", "127.0.0.1"])
    server.requests.clear()
    content = await _run(runner, _tool(server, "/orders/{orderId}"), '{"orderId": "LK 1/../x"}')
    [seen] = server.requests
    assert seen["raw_path"] == "/orders/LK%201%2F..%2Fx"  # encoded whole: the path keeps its shape
    assert seen["headers"]["host"] == f"tools.test:{server.port}"  # connected to the IP, by name
    assert seen["headers"]["authorization"] == SECRET
    assert content.startswith("UNTRUSTED DATA returned by tool order_status.")
    assert '"status":"shipped"' in content and "<<<TOOL RESULT id=" in content
    calls = runner.metrics.registry.get_sample_value(
        "promptrollouts_tool_calls_total", {"prompt": "order-status", "tool": "order_status"}
    )
    assert calls == 1.0


@pytest.mark.asyncio
async def test_invalid_arguments_never_reach_the_tool(
    server: ToolServer, client: httpx.AsyncClient
) -> None:
    runner = _runner(client, ["tools.test", "127.0.0.1"])
    server.requests.clear()
    tool = _tool(server, "/orders/{orderId}")
    for arguments in ('{"orderId": 5}', "{}", '{"orderId": "a", "x": 1}', "not json", "[1]"):
        content = await _run(runner, tool, arguments)
        assert content.startswith("TOOL ERROR (order_status): ")
    assert server.requests == []
    assert _errors(runner, "invalid_arguments") == 5


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "reason", "told"),
    [
        ("/slow", "timeout", "did not answer within 1s"),
        ("/fail", "status", "answered HTTP 500"),
        ("/redirect", "redirect", "redirect (302); not followed"),
    ],
)
async def test_failures_become_tool_errors(
    server: ToolServer, client: httpx.AsyncClient, path: str, reason: str, told: str
) -> None:
    runner = _runner(client, ["tools.test", "127.0.0.1"])
    server.requests.clear()
    content = await _run(runner, _tool(server, path), '{"orderId": "1"}')
    assert content.startswith("TOOL ERROR (order_status): ") and told in content
    assert _errors(runner, reason) == 1
    assert [r["path"] for r in server.requests] == [path]  # a redirect is never followed


@pytest.mark.asyncio
async def test_the_deadline_bounds_the_tool_call(
    server: ToolServer, client: httpx.AsyncClient
) -> None:
    runner = _runner(client, ["tools.test", "127.0.0.1"])
    content = await _run(runner, _tool(server, "/slow", timeoutSeconds=10), '{"orderId": "1"}', 0.3)
    assert "did not answer within 0.3" in content
    assert "no time left" in await _run(runner, _tool(server, "/slow"), '{"orderId": "1"}', 0.0)


@pytest.mark.asyncio
async def test_an_oversized_response_is_cut(server: ToolServer, client: httpx.AsyncClient) -> None:
    runner = _runner(client, ["tools.test", "127.0.0.1"], max_response_bytes=10_000)
    content = await _run(runner, _tool(server, "/big"), '{"orderId": "1"}')
    # TOOL_MAX_RESULT_CHARS (4000) of the 10 000 bytes read of 200 000
    assert "A" * 4000 in content and "A" * 4001 not in content
    assert "[truncated:" in content


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("hosts", "reason"),
    [
        ([], "tools_disabled"),
        (["tools.test"], "private_address"),  # listed by name, resolves to loopback
        (["other.test", "127.0.0.1"], "host_not_allowed"),
    ],
)
async def test_ssrf_refusals_never_send_a_request(
    server: ToolServer, client: httpx.AsyncClient, hosts: list[str], reason: str
) -> None:
    runner = _runner(client, hosts)
    server.requests.clear()
    content = await _run(runner, _tool(server, "/orders/{orderId}"), '{"orderId": "1"}')
    assert content.startswith("TOOL ERROR (order_status): ")
    assert _errors(runner, reason) == 1
    assert server.requests == []


@pytest.mark.asyncio
async def test_the_system_resolver_localhost_is_refused(client: httpx.AsyncClient) -> None:
    """A real DNS name (``localhost``) resolving to loopback, allowed by name only."""
    request = ToolHttpRequest("GET", "http://localhost:9/x", {}, None)
    with pytest.raises(ToolCallError) as refused:
        await call_http_tool(
            client, request, {}, parse_allowlist(["localhost"]), fetch_addresses, 1.0, 1000
        )
    assert refused.value.reason == "private_address"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://tools.test/x", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("http://169.254.169.254/latest/meta-data/", "metadata_address"),
        ("http://[fd00:ec2::254]/latest/", "metadata_address"),
        ("http://[::ffff:127.0.0.1]:9/", "host_not_allowed"),
        ("http://2130706433:9/", "ambiguous_address"),
        ("http://0177.0.0.1:9/", "ambiguous_address"),
        ("http://nowhere.test/", "resolve_failed"),
    ],
)
async def test_unsafe_urls_are_refused_before_connecting(
    client: httpx.AsyncClient, url: str, reason: str
) -> None:
    allow = parse_allowlist(["tools.test", "nowhere.test", "169.254.169.254", "fd00::/8"])
    with pytest.raises(ToolCallError) as refused:
        await call_http_tool(
            client, ToolHttpRequest("GET", url, {}, None), {}, allow, _resolve, 1.0, 1000
        )
    assert refused.value.reason == reason


@pytest.mark.asyncio
async def test_secrets_and_raw_arguments_stay_out_of_logs_and_spans(
    server: ToolServer, client: httpx.AsyncClient
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing()
    tracing.switch_on(provider.get_tracer("test"), capture_content=True)
    runner = _runner(client, ["tools.test", "127.0.0.1"], tracing=tracing)
    tool = _tool(server, "/orders/{orderId}")
    with structlog.testing.capture_logs() as events:
        await _run(runner, tool, '{"orderId": "jane.doe@example.com"}')
        await _run(runner, _tool(server, "/fail"), '{"orderId": "1"}')
    provider.shutdown()
    [ok, failed] = exporter.get_finished_spans()
    assert ok.name == "execute_tool order_status"
    assert ok.attributes is not None and failed.attributes is not None
    assert ok.attributes["gen_ai.operation.name"] == "execute_tool"
    assert ok.attributes["gen_ai.tool.name"] == "order_status"
    assert ok.attributes["gen_ai.tool.call.id"] == "call_1"
    assert failed.attributes["error.type"] == "status"
    everything = json.dumps([dict(s.attributes or {}) for s in (ok, failed)]) + json.dumps(
        events, default=str
    )
    assert SECRET not in everything and "s3cr3t" not in everything
    assert "jane.doe@example.com" not in everything
    logged = [e for e in events if e["event"] == "tool_call"]
    assert [e["outcome"] for e in logged] == ["ok", "error"]
    assert logged[0]["arguments"] == {"orderId": "[EMAIL]"}
    assert logged[1]["reason"] == "status" and logged[1]["http_status"] == 500


@pytest.mark.asyncio
async def test_a_missing_secret_is_a_tool_error(
    server: ToolServer, client: httpx.AsyncClient
) -> None:
    runner = _runner(client, ["tools.test", "127.0.0.1"], environ={})
    content = await _run(runner, _tool(server, "/orders/{orderId}"), '{"orderId": "1"}')
    assert "environment variable ORDERS_TOKEN is not set" in content
    assert _errors(runner, "secret_missing") == 1
