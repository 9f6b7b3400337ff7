"""The injected error responses of the fake model (pure): body, media type, Retry-After.

An error status (`Faults.status`) is answered in OpenAI's error shape, with an empty body, or
with an HTML page (`Faults.error_body`), and Retry-After in seconds or as an HTTP-date.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any

from fakemodel.faults import ErrorBody, RetryAfterFormat

__all__ = ["build_error_payload", "format_retry_after", "render_error_body"]


def format_retry_after(seconds: float, fmt: RetryAfterFormat, now: datetime) -> str:
    """A Retry-After value: whole seconds rounded up, or the HTTP-date no earlier than that."""
    if fmt == "seconds":
        return str(max(0, math.ceil(seconds)))
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware to format an HTTP-date")
    moment = (now + timedelta(seconds=max(0.0, seconds))).astimezone(UTC)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return format_datetime(moment, usegmt=True)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error" if status >= 500 else "Client Error"


def build_error_payload(status: int) -> dict[str, Any]:
    """An error in OpenAI's shape, typed the way OpenAI types that status."""
    if status == 429:
        kind, code = "requests", "rate_limit_exceeded"
    elif status >= 500:
        kind, code = "server_error", None
    else:
        kind, code = "invalid_request_error", None
    message = f"Injected fault: {status} {_phrase(status)}"
    return {"error": {"message": message, "type": kind, "code": code}}


def render_error_body(status: int, error_body: ErrorBody) -> tuple[bytes, str | None]:
    """The bytes and media type of an injected error response."""
    if error_body == "empty":
        return b"", None
    if error_body == "html":
        title = f"{status} {_phrase(status)}"
        html = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        return html.encode(), "text/html; charset=utf-8"
    return json.dumps(build_error_payload(status)).encode(), "application/json"
