"""The app's tool runner, built from the settings (I/O: opens the tools' HTTP client)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import httpx

from service.telemetry.metrics import Metrics
from service.telemetry.spans import Tracing
from service.tools.runner import ToolRunner
from service.tools.ssrf import parse_allowlist

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["build_tool_runner"]


async def build_tool_runner(
    settings: Settings, metrics: Metrics, tracing: Tracing, stack: AsyncExitStack
) -> ToolRunner:
    """The runner of prompts' HTTP tools, with a client of its own: no redirects, no proxies
    from the environment, bounded connections (TOOL_ALLOWED_HOSTS empty: every call refused)."""
    client = await stack.enter_async_context(
        httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        )
    )
    return ToolRunner(
        client,
        parse_allowlist(settings.tool_allowed_hosts),
        metrics=metrics,
        tracing=tracing,
        secrets_dir=settings.tool_secrets_dir,
        max_response_bytes=settings.tool_max_response_bytes,
        max_result_chars=settings.tool_max_result_chars,
    )
