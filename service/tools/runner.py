"""Runs the model's tool calls: arguments checked, the HTTP call made, the result rendered,
and every call traced, counted and logged. A call never raises: whatever goes wrong
becomes the tool message the model reads (``TOOL ERROR ...``), never a 500.

Span ``execute_tool {tool}`` (INTERNAL, OpenTelemetry GenAI conventions):
``gen_ai.operation.name=execute_tool``, ``gen_ai.tool.name``, ``gen_ai.tool.call.id``,
``gen_ai.tool.type=extension``, ``gen_ai.tool.description``; ``error.type`` (the reason)
on failure. Neither arguments, header values nor results are recorded on spans; the
``tool_call`` log line carries the arguments redacted, never header values.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog
from opentelemetry.trace import SpanKind, Status, StatusCode

from api.v1alpha1 import Tool
from prompting.redaction import redact_value
from service.llm.chat import ToolCall
from service.llm.resilience.deadline import Deadline
from service.telemetry.metrics import Metrics
from service.telemetry.spans import Tracing
from service.tools.arguments import build_http_request, decide_arguments
from service.tools.http_call import (
    Resolver,
    ToolCallError,
    call_http_tool,
    fetch_addresses,
    fetch_header_values,
)
from service.tools.offer import render_tool_result
from service.tools.ssrf import Allowlist

__all__ = ["ERROR_REASONS", "UNKNOWN_TOOL", "ToolRunner"]

#: The `tool` label of calls to a name the version does not declare.
UNKNOWN_TOOL = "_unknown"
#: Every `reason` label of promptrollouts_tool_errors_total.
ERROR_REASONS = (
    "tools_disabled",
    "unknown_tool",
    "invalid_arguments",
    "secret_missing",
    "scheme",
    "host_not_allowed",
    "ambiguous_address",
    "metadata_address",
    "private_address",
    "resolve_failed",
    "invalid_url",
    "redirect",
    "timeout",
    "deadline",
    "connect",
    "transport",
    "status",
)
_events = structlog.get_logger("service.tools")


@dataclass
class ToolRunner:
    """Executes tool calls for the answering pipeline (one per app)."""

    client: httpx.AsyncClient
    allow: Allowlist
    metrics: Metrics = field(default_factory=Metrics)
    tracing: Tracing = field(default_factory=Tracing)
    secrets_dir: Path = Path("/var/run/secrets/prompt-rollouts/tools")
    max_response_bytes: int = 65_536
    max_result_chars: int = 4000
    resolver: Resolver = fetch_addresses
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    clock: Callable[[], float] = time.perf_counter

    async def run(
        self,
        prompt: str,
        version: str,
        tools: Mapping[str, Tool],
        call: ToolCall,
        deadline: Deadline,
    ) -> str:
        """The content of the tool message answering `call` (a result or a TOOL ERROR)."""
        tool = tools.get(call.name)
        label = tool.name if tool else UNKNOWN_TOOL
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": label,
            "gen_ai.tool.call.id": call.id[:128],
            "gen_ai.tool.type": "extension",
        }
        if tool is not None:
            attributes["gen_ai.tool.description"] = tool.description
        started = self.clock()
        arguments: dict[str, Any] | None = None
        reason: str | None = None
        status: int | None = None
        with self.tracing.operation(f"execute_tool {label}", SpanKind.INTERNAL, attributes) as span:
            try:
                if tool is None:
                    raise ToolCallError("unknown_tool", f"there is no tool called {call.name!r}")
                decided = decide_arguments(tool, call.arguments)
                if decided.arguments is None:
                    raise ToolCallError("invalid_arguments", decided.error or "invalid arguments")
                arguments = decided.arguments
                content, status = await self._call(tool, arguments, deadline)
            except ToolCallError as error:
                reason, status = error.reason, error.status
                content = f"TOOL ERROR ({label}): {error}. Answer without this tool's result."
                if span.is_recording():
                    span.set_attribute("error.type", reason)
                    span.set_status(Status(StatusCode.ERROR, reason))
        self._record(prompt, version, label, call.id[:128], started, reason, status, arguments)
        return content

    async def _call(
        self, tool: Tool, arguments: dict[str, Any], deadline: Deadline
    ) -> tuple[str, int]:
        if not self.allow.enabled:
            raise ToolCallError("tools_disabled", "tools are disabled on this service")
        seconds = min(tool.http.timeout_seconds, deadline.remaining())
        if seconds <= 0:
            raise ToolCallError("deadline", "no time left for the tool call")
        headers = fetch_header_values(tool.http.headers, self.secrets_dir, self.environ)
        request = build_http_request(tool, arguments)
        result = await call_http_tool(
            self.client,
            request,
            headers,
            self.allow,
            self.resolver,
            seconds,
            self.max_response_bytes,
        )
        text = result.text + (
            "\n[truncated: response over the size limit]" if result.truncated else ""
        )
        content, _screened = render_tool_result(tool.name, text, self.max_result_chars)
        return content, result.status

    def _record(
        self,
        prompt: str,
        version: str,
        tool: str,
        call_id: str,
        started: float,
        reason: str | None,
        status: int | None,
        arguments: dict[str, Any] | None,
    ) -> None:
        seconds = self.clock() - started
        self.metrics.tool_calls.labels(prompt, tool).inc()
        self.metrics.tool_duration.labels(prompt, tool).observe(seconds)
        if reason is not None:
            self.metrics.tool_errors.labels(prompt, tool, reason).inc()
        log = _events.warning if reason else _events.info
        log(
            "tool_call",
            prompt=prompt,
            version=version,
            tool=tool,
            call_id=call_id,
            outcome="error" if reason else "ok",
            reason=reason,
            http_status=status,
            duration_ms=round(seconds * 1000, 2),
            arguments=redact_value(arguments) if arguments is not None else None,
        )
