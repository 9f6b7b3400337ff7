"""pydantic's JSON schema as a Kubernetes *structural* OpenAPI v3 schema (pure).

``$ref`` inlined, ``Optional[X]`` reduced to an optional ``X``, scalar unions escaped
with ``x-kubernetes-*`` markers, ``additionalProperties: false`` removed (the API server
prunes unknown fields; kubectl's strict field validation rejects them). Any construct
the converter does not know raises :class:`SchemaError` instead of producing a CRD that
silently disagrees with the models. :mod:`api.v1alpha1.crd` builds the CRD with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.v1alpha1.manifests import ApiError

__all__ = ["SchemaError", "convert_schema", "order_keys"]

_SCALAR_TYPES = frozenset({"boolean", "integer", "number", "string"})
_NULL = {"type": "null"}
#: Keywords copied as they are; anything not listed here (or handled below) is an error.
_VALUE_KEYWORDS = (
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "maxProperties",
)
_DROPPED = frozenset({"title", "examples"})
_HANDLED = frozenset(
    {"$ref", "allOf", "anyOf", "const", "type", "description", "required"}
    | {"properties", "additionalProperties", "items"}
    | set(_VALUE_KEYWORDS)
)
#: Output key order, so the generated YAML is stable and reads top-down.
_KEY_ORDER = (
    "description",
    "type",
    *_VALUE_KEYWORDS,
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
    "required",
    "items",
    "properties",
    "additionalProperties",
)


class SchemaError(ApiError):
    """The models use a JSON-schema construct the CRD generator does not handle."""


def convert_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema (with ``$defs``) as a structural Kubernetes schema."""
    defs: Mapping[str, Any] = schema.get("$defs", {})
    body = {key: value for key, value in schema.items() if key != "$defs"}
    node, nullable = _convert(body, defs, "", ())
    if nullable:
        raise SchemaError("<root>: the root schema cannot be nullable")
    return node


def _resolve(
    node: Mapping[str, Any], defs: Mapping[str, Any], path: str, seen: tuple[str, ...]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Inline ``$ref`` (and single-member ``allOf``); sibling keys win over the target's."""
    if "allOf" in node:
        members = node["allOf"]
        if len(members) != 1:
            raise SchemaError(f"{path or '<root>'}: allOf with {len(members)} members")
        rest = {key: value for key, value in node.items() if key != "allOf"}
        return _resolve({**members[0], **rest}, defs, path, seen)
    if "$ref" not in node:
        return dict(node), seen
    ref = node["$ref"]
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
        raise SchemaError(f"{path or '<root>'}: unresolvable $ref {ref!r}")
    name = ref[len(prefix) :]
    if name in seen:
        raise SchemaError(f"{path or '<root>'}: recursive $ref {ref!r}")
    target, seen = _resolve(defs[name], defs, path, (*seen, name))
    rest = {key: value for key, value in node.items() if key != "$ref"}
    return {**target, **rest}, seen


def _convert(
    raw: Mapping[str, Any], defs: Mapping[str, Any], path: str, seen: tuple[str, ...]
) -> tuple[dict[str, Any], bool]:
    """One node, converted; and whether the model allows null there."""
    node, seen = _resolve(raw, defs, path, seen)
    if "anyOf" in node:
        return _convert_union(node, defs, path, seen)
    where = path or "<root>"
    out = _copy_keywords(node, where)
    kind = node.get("type")
    if kind is not None and not isinstance(kind, str):
        raise SchemaError(f"{where}: a list of types ({kind!r}) is not structural")
    if kind is None:
        out.update(_convert_untyped(node, where))
    elif kind == "object":
        out.update(_convert_object(node, defs, path, seen))
    elif kind == "array":
        out.update(_convert_array(node, defs, path, seen))
    elif kind in _SCALAR_TYPES:
        out["type"] = kind
    else:
        raise SchemaError(f"{where}: unsupported type {kind!r}")
    if kind not in ("object", "array") and {"properties", "items"} & node.keys():
        raise SchemaError(f"{where}: properties/items on a {kind or 'untyped'} node")
    return order_keys(out), False


def _copy_keywords(node: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The keywords kept as they are (null defaults dropped); unknown keywords are errors."""
    unknown = sorted(
        key
        for key in node
        if key not in _HANDLED | _DROPPED and not key.startswith("x-kubernetes-")
    )
    if unknown:
        raise SchemaError(f"{where}: unsupported keyword(s) {', '.join(unknown)}")
    out = {key: value for key, value in node.items() if key.startswith("x-kubernetes-")}
    if "description" in node:
        out["description"] = node["description"]
    for key in _VALUE_KEYWORDS:
        if key in node and not (key == "default" and node[key] is None):
            out[key] = node[key]
    if "const" in node:
        out["enum"] = [node["const"]]
    return out


def _convert_untyped(node: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A node without ``type``: only ``Any`` (an empty schema) is understood."""
    if set(node) - {"description", "default"} - _DROPPED:
        raise SchemaError(f"{where}: a node without a type must be empty (Any)")
    return {"x-kubernetes-preserve-unknown-fields": True}


def _convert_union(
    node: Mapping[str, Any], defs: Mapping[str, Any], path: str, seen: tuple[str, ...]
) -> tuple[dict[str, Any], bool]:
    where = path or "<root>"
    rest = {key: value for key, value in node.items() if key != "anyOf"}
    members = [member for member in node["anyOf"] if member != _NULL]
    nullable = len(members) < len(node["anyOf"])
    if len(members) == 1:
        single, seen = _resolve(members[0], defs, path, seen)
        converted, inner_nullable = _convert({**single, **rest}, defs, path, seen)
        return converted, nullable or inner_nullable
    resolved = [_resolve(member, defs, path, seen)[0] for member in members]
    if not all(_is_plain_scalar(member) for member in resolved):
        raise SchemaError(
            f"{where}: anyOf is supported only as Optional[X] or a union of plain scalar types"
        )
    extra = set(rest) - {"description", "default"} - _DROPPED
    if extra:
        raise SchemaError(f"{where}: unsupported keyword(s) next to anyOf: {sorted(extra)}")
    kinds = {member["type"] for member in resolved}
    out: dict[str, Any] = {}
    if "description" in rest:
        out["description"] = rest["description"]
    if rest.get("default") is not None:
        out["default"] = rest["default"]
    marker = (
        "x-kubernetes-int-or-string"
        if kinds == {"integer", "string"}
        else "x-kubernetes-preserve-unknown-fields"
    )
    out[marker] = True
    return order_keys(out), nullable


def _is_plain_scalar(node: Mapping[str, Any]) -> bool:
    """A bare scalar type: constraints inside a union member cannot be expressed."""
    return node.get("type") in _SCALAR_TYPES and set(node) - _DROPPED <= {"type", "description"}


def _convert_object(
    node: Mapping[str, Any], defs: Mapping[str, Any], path: str, seen: tuple[str, ...]
) -> dict[str, Any]:
    where = path or "<root>"
    extra = node.get("additionalProperties")
    out: dict[str, Any] = {"type": "object"}
    if "properties" not in node:
        if extra is None or extra is True:
            out["x-kubernetes-preserve-unknown-fields"] = True
        elif isinstance(extra, Mapping):
            value, nullable = _convert(extra, defs, f"{path}.*", seen)
            if nullable:
                raise SchemaError(f"{where}: map values cannot be nullable")
            out["additionalProperties"] = value
        if "required" in node:
            raise SchemaError(f"{where}: required without properties")
        return out
    if isinstance(extra, Mapping):
        raise SchemaError(f"{where}: additionalProperties schema next to properties")
    if extra is True:
        out["x-kubernetes-preserve-unknown-fields"] = True
    required: list[str] = list(node.get("required", []))
    properties: dict[str, Any] = {}
    for name, child in node["properties"].items():
        child_path = f"{path}.{name}" if path else name
        properties[name], nullable = _convert(child, defs, child_path, seen)
        if nullable and name in required:
            raise SchemaError(f"{child_path}: a required field cannot be nullable")
    missing = [name for name in required if name not in properties]
    if missing:
        raise SchemaError(f"{where}: required names unknown properties {missing}")
    if required:
        out["required"] = required
    out["properties"] = properties
    return out


def _convert_array(
    node: Mapping[str, Any], defs: Mapping[str, Any], path: str, seen: tuple[str, ...]
) -> dict[str, Any]:
    where = path or "<root>"
    if not isinstance(node.get("items"), Mapping):
        raise SchemaError(f"{where}: an array needs a single items schema")
    items, nullable = _convert(node["items"], defs, f"{path}[]", seen)
    if nullable:
        raise SchemaError(f"{where}: array items cannot be nullable")
    return {"type": "array", "items": items}


def order_keys(node: Mapping[str, Any]) -> dict[str, Any]:
    """``node`` with its keys in ``_KEY_ORDER`` (unknown keys last, sorted)."""
    rank = {key: index for index, key in enumerate(_KEY_ORDER)}
    return {key: node[key] for key in sorted(node, key=lambda k: (rank.get(k, len(rank)), k))}
