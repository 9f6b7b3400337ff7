"""Structured output for the fake model: answers to ``response_format: json_schema`` (pure).

By default a request asking for a JSON schema gets the smallest document that meets it
(:func:`build_schema_instance`): required properties only, the first ``enum`` value,
``const`` as is, ``false``, ``0`` (or the ``minimum``), ``""`` (padded to ``minLength``),
arrays of ``minItems`` minimal items, the first branch of ``anyOf``/``oneOf``, local
``$ref`` followed. Deterministic: the same schema always gives the same document.

Two faults break it (``invalid_json_rate``, ``off_schema_rate`` in ``fakemodel.faults``):
:data:`INVALID_JSON` (not JSON at all) and :func:`build_off_schema` (JSON that breaks the
schema where the schema can be broken). A repair conversation (one that already holds an
assistant turn) is never broken, so the service's repair path is testable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from fakemodel.faults import QualityReply
from fakemodel.quality import build_degraded_answer

__all__ = [
    "INVALID_JSON",
    "build_off_schema",
    "build_schema_instance",
    "build_structured_answer",
    "find_json_schema",
    "is_repair_conversation",
]

#: The answer of the ``invalid_json`` fault: an object cut off mid-string.
INVALID_JSON = '{"answer": "this object is never clos'
#: Deepest schema nesting followed; deeper parts become null.
_MAX_DEPTH = 32


def find_json_schema(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema of a ``response_format: {type: json_schema, ...}`` request, or None."""
    wanted = body.get("response_format")
    if not isinstance(wanted, Mapping) or wanted.get("type") != "json_schema":
        return None
    spec = wanted.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return schema if isinstance(schema, Mapping) else None


def is_repair_conversation(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the conversation already holds an answer (a follow-up, such as a repair)."""
    return any(m.get("role") == "assistant" for m in messages)


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#"):
        return node
    target: Any = root
    for part in (p for p in ref[1:].split("/") if p):
        target = (
            target.get(part.replace("~1", "/").replace("~0", "~"), {})
            if isinstance(target, Mapping)
            else {}
        )
    return target if isinstance(target, Mapping) else {}


def _type_of(node: Mapping[str, Any]) -> str | None:
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or kind
        kind = kinds[0] if kinds else None
    if kind is None:
        if "properties" in node or "required" in node:
            return "object"
        if "items" in node:
            return "array"
    return kind if isinstance(kind, str) else None


def _number(node: Mapping[str, Any], integer: bool) -> int | float:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    if not isinstance(low, int | float) or isinstance(low, bool) or low <= 0:
        return 0
    if "minimum" not in node:
        return int(low) + 1 if integer else low + 1
    return int(-(-low // 1)) if integer else low


def _count(node: Mapping[str, Any], key: str) -> int:
    value = node.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _build(node: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Any:
    node = _resolve(node, root)
    if depth > _MAX_DEPTH:
        return None
    if "const" in node:
        return node["const"]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches and isinstance(branches[0], Mapping):
            return _build({**node, key: None, **branches[0]}, root, depth + 1)
    kind = _type_of(node)
    if kind == "object":
        properties = node.get("properties") or {}
        return {
            name: _build(properties.get(name) or {}, root, depth + 1)
            for name in node.get("required") or []
            if isinstance(name, str)
        }
    if kind == "array":
        items = node.get("items")
        count = _count(node, "minItems")
        item = items if isinstance(items, Mapping) else {}
        return [_build(item, root, depth + 1) for _ in range(min(count, 100))]
    if kind in ("integer", "number"):
        return _number(node, kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    length = _count(node, "minLength")
    return "x" * min(length, 10_000)


def build_schema_instance(schema: Mapping[str, Any]) -> Any:
    """The smallest document meeting `schema` (see the module docstring)."""
    return _build(schema, schema, 0)


def build_off_schema(schema: Mapping[str, Any]) -> Any:
    """JSON that breaks `schema`: its first required property left out, or the wrong type.

    A schema that accepts anything (``{}``) cannot be broken; its minimal document is
    returned as is.
    """
    value = build_schema_instance(schema)
    required = schema.get("required")
    if isinstance(value, dict) and isinstance(required, list) and required:
        return {key: item for key, item in value.items() if key != required[0]}
    kind = _type_of(schema)
    if kind is None and "enum" not in schema and "const" not in schema:
        return value
    return {"off_schema": True} if kind in ("array", "string", "number", "integer") else []


def build_structured_answer(
    schema: Mapping[str, Any], kind: QualityReply | None, repair: bool
) -> str:
    """The answer to a json_schema request, degraded the way `kind` says unless `repair`."""
    if repair or kind in (None, "uncited"):
        return json.dumps(build_schema_instance(schema))
    if kind == "invalid_json":
        return INVALID_JSON
    if kind == "off_schema":
        return json.dumps(build_off_schema(schema))
    return build_degraded_answer(kind, "")
