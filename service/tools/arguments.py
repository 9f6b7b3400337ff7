"""A tool call's arguments: parsed, validated against the tool's schema, made into a request (pure).

::

    '{"order_id": "A-1"}' ──decide_arguments──> {"order_id": "A-1"} or the error the model sees
    arguments ──build_http_request──> URL ({param} filled URL-encoded), query or JSON body

Arguments named in the URL are percent-encoded whole (``/`` too), so an argument never
changes the path's shape or the host. The rest go in the query string (GET, DELETE)
or a JSON body (POST, PUT, PATCH).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from api.v1alpha1 import Tool

__all__ = ["ArgumentsDecision", "ToolHttpRequest", "build_http_request", "decide_arguments"]

#: Longest arguments string accepted from the model.
MAX_ARGUMENT_CHARS = 16_384
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class ArgumentsDecision:
    """The validated arguments, or the error the model is told."""

    arguments: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class ToolHttpRequest:
    """What to send: the URL with its placeholders filled, query parameters, a JSON body."""

    method: str
    url: str
    params: dict[str, str]
    body: dict[str, Any] | None


def decide_arguments(tool: Tool, raw: str) -> ArgumentsDecision:
    """`raw` parsed as a JSON object and validated against ``tool.parameters``."""
    if len(raw) > MAX_ARGUMENT_CHARS:
        return ArgumentsDecision(error=f"arguments longer than {MAX_ARGUMENT_CHARS} characters")
    try:
        arguments = json.loads(raw or "{}")
    except json.JSONDecodeError as error:
        return ArgumentsDecision(error=f"arguments are not valid JSON ({error.msg})")
    except ValueError:
        return ArgumentsDecision(error="arguments are not valid JSON")
    if not isinstance(arguments, dict):
        return ArgumentsDecision(error="arguments must be a JSON object")
    # Deferred: jsonschema loads with the first schema, not at start-up.
    from jsonschema import Draft202012Validator  # noqa: PLC0415
    from referencing.exceptions import Unresolvable  # noqa: PLC0415

    try:
        errors = sorted(
            Draft202012Validator(tool.parameters).iter_errors(arguments),
            key=lambda e: [str(p) for p in e.path],
        )
    except Unresolvable as error:
        return ArgumentsDecision(error=f"the tool's schema has an unresolvable $ref ({error})")
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        return ArgumentsDecision(error=f"invalid arguments at {where}: {first.message}")
    return ArgumentsDecision(arguments=arguments)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def build_http_request(tool: Tool, arguments: dict[str, Any]) -> ToolHttpRequest:
    """The request a validated call becomes (placeholders are required, so always present)."""
    used: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        used.add(match.group(1))
        return quote(_text(arguments[match.group(1)]), safe="")

    url = _PLACEHOLDER.sub(fill, tool.http.url)
    rest = {k: v for k, v in arguments.items() if k not in used}
    if tool.http.method in _BODY_METHODS:
        return ToolHttpRequest(tool.http.method, url, {}, rest)
    return ToolHttpRequest(tool.http.method, url, {k: _text(v) for k, v in rest.items()}, None)
