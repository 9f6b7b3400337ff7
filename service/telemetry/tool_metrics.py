"""The metric families of declarative HTTP tools (service/tools/, docs/prompts.md "Tools")."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from service.telemetry.buckets import LATENCY_BUCKETS

__all__ = ["ToolMetrics"]


class ToolMetrics:
    """Calls, errors by reason, and durations per prompt and tool."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "promptrollouts_tool_calls_total",
            "Tool calls the model asked for, by prompt and tool (unknown names: tool=_unknown).",
            ["prompt", "tool"],
            registry=registry,
        )
        self.errors = Counter(
            "promptrollouts_tool_errors_total",
            "Tool calls that failed or were refused, by prompt, tool and reason.",
            ["prompt", "tool", "reason"],
            registry=registry,
        )
        self.duration = Histogram(
            "promptrollouts_tool_duration_seconds",
            "Time to run a tool call (checks, resolving, the HTTP exchange), by prompt and tool.",
            ["prompt", "tool"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
