"""Applying a decided fault to the fake model's response (`fakemodel.app` builds it).

A delay (or a hang until the client gives up), then an injected error status, a body cut in
half, or a connection dropped after half the body; a streamed answer breaks mid-stream
instead (`fakemodel.streaming`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from fakemodel.errors import format_retry_after, render_error_body
from fakemodel.faults import FaultAction
from fakemodel.state import RecordedRequest
from fakemodel.streaming import StreamBroken, build_stream_events, send_stream_events

__all__ = ["InjectedReset", "InjectedResetLogFilter", "apply_fault", "apply_stream_fault"]


class InjectedReset(Exception):  # noqa: N818 - it names the fault, not an error condition
    """Raised after a partial body so that the server drops the connection."""


class InjectedResetLogFilter(logging.Filter):
    """Drop the server's "Exception in ASGI application" traceback for injected resets."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for records caused by `InjectedReset`."""
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, InjectedReset | StreamBroken)


class _ResetResponse(Response):
    """Headers announcing the whole body, half of it, then a dropped connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
            }
        )
        half = bytes(self.body[: len(self.body) // 2])
        await send({"type": "http.response.body", "body": half, "more_body": True})
        raise InjectedReset("injected connection reset")


async def _until_disconnect(request: Request) -> None:
    """Return once the client is gone (the body has been read, so nothing else arrives)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _wait(request: Request, seconds: float) -> bool:
    """Sleep `seconds` (inf: forever); False as soon as the client is gone.

    One wait on the next ASGI message, not a poll of ``Request.is_disconnected``: each of
    its checks opens an anyio cancel scope that formats the task's repr, which was ~18 % of
    the fake model's CPU per request at 64 connections (cProfile, bench/tried.md).
    """
    listening = asyncio.ensure_future(_until_disconnect(request))
    try:
        done, _ = await asyncio.wait({listening}, timeout=None if math.isinf(seconds) else seconds)
    finally:
        listening.cancel()
    return not done


def _injected_error(action: FaultAction, status: int) -> Response:
    content, media_type = render_error_body(status, action.error_body)
    headers = {}
    if action.retry_after is not None:
        now = datetime.now(UTC)
        headers["Retry-After"] = format_retry_after(
            action.retry_after, action.retry_after_format, now
        )
    return Response(content, status, headers=headers, media_type=media_type)


async def apply_fault(
    request: Request, recorded: RecordedRequest, action: FaultAction, response: Response
) -> Response:
    """Send `response`, or what `action` makes of it; complete the record."""
    recorded.fault = action.label
    delay = action.delay_ms / 1000 if action.failure != "hang" else math.inf
    if delay > 0 and not await _wait(request, delay):
        recorded.client_disconnected = True
        return Response(status_code=499)
    if action.failure == "status" and action.status is not None:
        response = _injected_error(action, action.status)
    elif action.failure == "malformed":
        truncated = bytes(response.body[: len(response.body) // 2])
        response = Response(truncated, 200, media_type="application/json")
    elif action.failure == "reset":
        return _ResetResponse(
            bytes(response.body), response.status_code, media_type=response.media_type
        )
    recorded.response_status = response.status_code
    return response


async def apply_stream_fault(
    request: Request,
    recorded: RecordedRequest,
    action: FaultAction,
    answer: str,
    model: str,
    usage: dict[str, int],
    body: dict[str, Any],
) -> Response:
    """A streamed answer (`fakemodel.streaming`), or the fault that comes before it."""
    mid_stream = action.failure if action.failure in ("reset", "malformed") else None
    before = replace(action, failure=None) if mid_stream else action
    placeholder = Response(status_code=200)
    sent = await apply_fault(request, recorded, before, placeholder)
    if sent is not placeholder:
        return sent
    recorded.fault = action.label
    options = body.get("stream_options")
    events = build_stream_events(
        answer,
        completion_id=f"chatcmpl-{uuid.uuid4().hex[:24]}",
        created=int(time.time()),
        model=model,
        usage=usage,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
    )
    return StreamingResponse(
        send_stream_events(events, mid_stream, action.token_delay_ms),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )
