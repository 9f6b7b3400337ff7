"""Calling webhooks (I/O): a signed JSON POST, retried with backoff within its timeout.

The body is the payload as compact JSON with sorted keys; the signature is
``X-Prompt-Rollouts-Signature: sha256=<hex>``, the HMAC-SHA256 of those exact bytes with
the controller's ``WEBHOOK_SECRET`` (no header when no secret is set). A 2xx answer is a
yes; 4xx is a no, given at once; 5xx, 429 and network errors are retried (0.2 s, 0.4 s, …)
until ``timeoutSeconds`` is spent. Redirects are not followed. Outcomes name the webhook's
HTTP status or error class, never its URL (a URL may carry a token).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import httpx

from controller.gate_calls import GateCall, GateOutcome
from controller.signing import SIGNATURE_HEADER, sign_body

__all__ = ["build_body", "call_webhook", "call_webhooks"]

_FIRST_BACKOFF = 0.2
_MAX_BACKOFF = 2.0


def build_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


async def call_webhook(http: httpx.AsyncClient, call: GateCall, secret: str | None) -> GateOutcome:
    """POST `call`'s payload to its webhook; the outcome within its timeoutSeconds, always."""
    body = build_body(call.payload)
    headers = {"Content-Type": "application/json", "User-Agent": "prompt-rollouts-controller"}
    if secret:
        headers[SIGNATURE_HEADER] = sign_body(body, secret)
    budget = float(call.hook.timeout_seconds)
    deadline = time.monotonic() + budget
    backoff, attempts, last = _FIRST_BACKOFF, 0, "no answer"
    try:
        async with asyncio.timeout(budget):
            while True:
                attempts += 1
                remaining = max(deadline - time.monotonic(), 0.001)
                try:
                    response = await http.post(
                        call.hook.url,
                        content=body,
                        headers=headers,
                        timeout=remaining,
                        follow_redirects=False,
                    )
                except httpx.InvalidURL:
                    return GateOutcome(False, "InvalidURL")
                except Exception as error:  # any failure of a webhook is a "no"
                    last = type(error).__name__
                else:
                    if response.is_success:
                        return GateOutcome(True, f"HTTP {response.status_code}")
                    last = f"HTTP {response.status_code}"
                    if not _retryable(response.status_code):
                        return GateOutcome(False, last)
                await asyncio.sleep(min(backoff, max(deadline - time.monotonic(), 0)))
                backoff = min(backoff * 2, _MAX_BACKOFF)
    except TimeoutError:
        pass
    tries = "1 try" if attempts == 1 else f"{attempts} tries"
    return GateOutcome(False, f"{last} after {tries} in {budget:g}s (timed out)")


async def call_webhooks(
    http: httpx.AsyncClient, calls: Sequence[GateCall], secret: str | None
) -> list[tuple[GateCall, GateOutcome]]:
    """Call every webhook of `calls` at once; each outcome next to its call."""
    outcomes = await asyncio.gather(*(call_webhook(http, call, secret) for call in calls))
    return list(zip(calls, outcomes, strict=True))
