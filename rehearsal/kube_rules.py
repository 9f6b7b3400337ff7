"""The API server's rules the emulator follows, as pure functions: no kmock state, no I/O.

Boolean query parameters as Go parses them, RFC 7386 merge patches, equality selectors,
what a write may change (status subresource, server-owned metadata, generation), kubectl's
short ages, and Tables with the ``.a.b`` paths of printer columns. Used by
:mod:`rehearsal.kmock_patches` and :mod:`rehearsal.kube_store`.
"""

from __future__ import annotations

import copy
import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

import kmock

__all__ = [
    "AGE_ONLY",
    "build_table",
    "decide_bool_param",
    "decide_update",
    "group_version",
    "json_path",
    "match_selectors",
    "merge_patch",
    "now_stamp",
    "render_age",
    "revision_of",
]

_BOOLEAN_PARAMS = {"watch", "allowWatchBookmarks", "sendInitialEvents"}


def decide_bool_param(key: str, value: str) -> str:
    """Boolean query parameters as the API server parses them (Go's strconv.ParseBool): the
    official Python clients send `watch=True`, which kmock reads as "not a watch"."""
    if key in _BOOLEAN_PARAMS and value in {"1", "t", "T", "TRUE", "True"}:
        return "true"
    if key in _BOOLEAN_PARAMS and value in {"0", "f", "F", "FALSE", "False"}:
        return "false"
    return value


def now_stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_age(timestamp: str) -> str:
    """kubectl's short age: 7s, 5m, 3h, 2d."""
    born = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = max(0, int((datetime.datetime.now(datetime.UTC) - born).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def revision_of(event: Mapping[str, Any]) -> int:
    return int(event["object"]["metadata"]["resourceVersion"])


def group_version(resource: kmock.resource) -> str:
    return f"{resource.group}/{resource.version}".lstrip("/")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (kmock's own refuses to put a dict where a scalar was)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_path(body: Mapping[str, Any], path: str) -> Any:
    value: Any = body
    for part in path.strip(".").split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _split_term(term: str) -> tuple[str, str, str]:
    """A selector term: "a!=b" -> ("a", "!=", "b"); "!a" -> ("!a", "", "")."""
    parts = [part.strip() for part in re.split(r"(!=|==|=)", term, maxsplit=1)]
    key, op, value = [*parts, "", ""][:3]
    return key, op, value


def match_selectors(body: Mapping[str, Any], params: Mapping[str, str]) -> bool:
    """Equality-based labelSelector and metadata.name/namespace fieldSelector."""
    meta = body.get("metadata", {})
    labels = meta.get("labels") or {}
    for term in filter(None, params.get("labelSelector", "").split(",")):
        if "(" in term or " in " in term or " notin " in term:
            raise kmock.KubernetesError(400, "BadRequest", f"unsupported selector {term!r}")
        key, op, value = _split_term(term)
        if op == "!=":
            ok = labels.get(key) != value
        elif op:
            ok = labels.get(key) == value
        else:
            ok = (key.lstrip("!") in labels) != key.startswith("!")
        if not ok:
            return False
    fields = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace")}
    for term in filter(None, params.get("fieldSelector", "").split(",")):
        key, op, value = _split_term(term)
        if key in fields and (fields[key] == value) == (op == "!="):
            return False
    return True


def decide_update(
    old: dict[str, Any], patched: dict[str, Any], *, to_status: bool, has_status: bool
) -> dict[str, Any]:
    """The stored object after a write: status subresource rules, server-owned metadata kept."""
    if to_status:  # /status changes .status and nothing else
        new = copy.deepcopy(old)
        new.pop("status", None)
        if "status" in patched:
            new["status"] = patched["status"]
        return new
    new = copy.deepcopy(patched)
    if has_status:  # the object itself: .status stays as it was
        new.pop("status", None)
        if "status" in old:
            new["status"] = old["status"]
    meta = new.setdefault("metadata", {})
    for field in (
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "generation",
    ):
        meta.pop(field, None)
        if field in old["metadata"]:
            meta[field] = old["metadata"][field]
    meta["resourceVersion"] = old["metadata"].get("resourceVersion")
    spec_before = {k: v for k, v in old.items() if k not in {"metadata", "status"}}
    spec_after = {k: v for k, v in new.items() if k not in {"metadata", "status"}}
    if spec_before != spec_after:  # controllers compare it with status.observedGeneration
        meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
    return new


#: The columns of a resource without printer columns: kubectl shows its name and age.
AGE_ONLY: tuple[dict[str, Any], ...] = (
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)


def build_table(
    columns: Sequence[Mapping[str, Any]], items: list[dict[str, Any]], revision: int
) -> dict[str, Any]:
    """Server-side printing (meta.k8s.io/v1 Table) of `items` with printer `columns`."""
    definitions = [
        {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}
    ]
    definitions += [
        {
            "name": c["name"],
            "type": c["type"],
            "format": c.get("format", ""),
            "description": c.get("description", ""),
            "priority": c.get("priority", 0),
        }
        for c in columns
    ]

    def cell(body: dict[str, Any], column: Mapping[str, Any]) -> Any:
        value = json_path(body, column["jsonPath"])
        return render_age(value) if column["type"] == "date" and isinstance(value, str) else value

    rows = [
        {
            "cells": [body["metadata"]["name"], *(cell(body, c) for c in columns)],
            "object": {
                "apiVersion": "meta.k8s.io/v1",
                "kind": "PartialObjectMetadata",
                "metadata": body["metadata"],
            },
        }
        for body in items
    ]
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "Table",
        "metadata": {"resourceVersion": str(revision)},
        "columnDefinitions": definitions,
        "rows": rows,
    }
