"""The generated PromptVersion CRD: drift, structural schema, names, defaults, converter."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from pydantic import BaseModel, Field, TypeAdapter

from api.v1alpha1.crd import (
    SchemaError,
    build_crd,
    build_openapi_schema,
    convert_schema,
)
from api.v1alpha1.types import PromptVersionSpec, PromptVersionStatus
from promptctl.crd import HEADER, render_crd_yaml

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "promptversion.yaml"
X_ESCAPES = ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string")


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with a readable path (properties, items, map values)."""
    yield path or "<root>", node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}.*")


def _version() -> dict[str, Any]:
    [version] = build_crd()["spec"]["versions"]
    return typing.cast(dict[str, Any], version)


def test_committed_crd_matches_the_models() -> None:
    committed = CRD_FILE.read_text(encoding="utf-8")
    assert committed.startswith(HEADER + "\n")
    assert yaml.safe_load(committed) == build_crd(), (
        "crds/promptversion.yaml is out of date with api/v1alpha1/types.py: run make crds"
    )
    assert committed == render_crd_yaml(), (
        "crds/promptversion.yaml formatting drifted: run make crds"
    )


def test_build_crd_is_deterministic() -> None:
    assert render_crd_yaml() == render_crd_yaml()
    assert list(build_crd()) == ["apiVersion", "kind", "metadata", "spec"]


def test_schema_is_structural() -> None:
    schema = build_openapi_schema()
    for path, node in _nodes(schema):
        for forbidden in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "nullable"):
            assert forbidden not in node, f"{path}: {forbidden}"
        assert "title" not in node, path
        assert "examples" not in node, path
        assert "properties" not in node or "additionalProperties" not in node, path
        assert node.get("type") or any(node.get(x) for x in X_ESCAPES), f"{path}: no type"
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), f"{path}: array without items"
        assert node.get("default", ...) is not None, f"{path}: null default"


def test_root_schema_shape() -> None:
    schema = build_openapi_schema()
    assert schema["type"] == "object"
    assert list(schema["properties"]) == ["apiVersion", "kind", "metadata", "spec", "status"]
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema["required"] == ["spec"]


def test_scalar_unions_and_free_form_maps_use_escapes() -> None:
    props = build_openapi_schema()["properties"]
    variable = props["spec"]["properties"]["variables"]["items"]["properties"]
    assert variable["default"] == {
        "description": "Value used when none is supplied.",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert variable["enum"]["items"] == {"x-kubernetes-preserve-unknown-fields": True}
    assert props["status"]["properties"]["lastAnalysis"] == {
        "description": "Measured values, queries and verdict of the latest analysis.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_spec_is_immutable_through_cel() -> None:
    spec = build_openapi_schema()["properties"]["spec"]
    assert spec["x-kubernetes-validations"] == [
        {
            "rule": "self == oldSelf",
            "message": "spec is immutable: apply a new PromptVersion (a new version) instead",
        }
    ]


def test_names_scope_and_version() -> None:
    spec = build_crd()["spec"]
    assert build_crd()["metadata"] == {"name": "promptversions.promptrollouts.io"}
    assert spec["group"] == "promptrollouts.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "PromptVersion",
        "listKind": "PromptVersionList",
        "plural": "promptversions",
        "singular": "promptversion",
        "shortNames": ["pver"],
        "categories": ["prompt-rollouts"],
    }
    version = _version()
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = [
        (c["name"], c["type"], c["jsonPath"]) for c in _version()["additionalPrinterColumns"]
    ]
    assert columns == [
        ("Prompt", "string", ".spec.prompt"),
        ("Version", "string", ".spec.version"),
        ("Phase", "string", ".status.phase"),
        ("Weight", "integer", ".status.weight"),
        ("Step", "integer", ".status.stepIndex"),
        ("Kind", "string", ".status.stepKind"),
        ("Quality", "string", ".status.quality"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]
    # The quality sentence is long: only `kubectl get -o wide` shows it.
    priorities = {c["name"]: c.get("priority", 0) for c in _version()["additionalPrinterColumns"]}
    assert [name for name, priority in priorities.items() if priority] == ["Quality"]


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X``, ``X | None`` or ``list[X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            found = _nested_model(arg)
            if found is not None:
                return found
    return None


def _default_pairs(
    model: type[BaseModel], schema: dict[str, Any], path: str
) -> Iterator[tuple[str, Any, Any]]:
    """(path, pydantic default or None, CRD default or None) for every field, recursively."""
    if schema.get("type") == "array":
        schema = schema["items"]
    properties = schema["properties"]
    assert set(properties) == {info.alias or name for name, info in model.model_fields.items()}
    for name, info in model.model_fields.items():
        alias = info.alias or name
        node = properties[alias]
        expected = None
        if not info.is_required() and info.default_factory is None and info.default is not None:
            assert info.annotation is not None
            expected = TypeAdapter(info.annotation).dump_python(info.default, mode="json")
        yield f"{path}.{alias}", expected, node.get("default")
        nested = _nested_model(info.annotation)
        if nested is not None:
            yield from _default_pairs(nested, node, f"{path}.{alias}")


def test_every_crd_default_equals_the_pydantic_default() -> None:
    props = build_openapi_schema()["properties"]
    pairs = [
        *_default_pairs(PromptVersionSpec, props["spec"], "spec"),
        *_default_pairs(PromptVersionStatus, props["status"], "status"),
    ]
    mismatched = [(path, want, got) for path, want, got in pairs if want != got]
    assert not mismatched
    assert sum(want is not None for _, want, _ in pairs) >= 15  # the walk really saw defaults
    assert ("spec.model.temperature", 0.0, 0.0) in pairs


# --- the converter on small models -------------------------------------------------------


class _IntOrStr(BaseModel):
    port: int | str = Field(description="A port.")


class _Optional(BaseModel):
    name: str | None = Field(default=None, max_length=3)


class _Map(BaseModel):
    labels: dict[str, str]


class _ConstrainedUnion(BaseModel):
    value: int | Annotated[str, Field(pattern="^a$")]


class _Leaf(BaseModel):
    size: int


class _TwoModels(BaseModel):
    value: _Leaf | _IntOrStr


class _Tree(BaseModel):
    children: list[_Tree] = Field(default_factory=list)


class _RequiredNullable(BaseModel):
    name: str | None


class _Set(BaseModel):
    tags: set[str]


class _Exclusive(BaseModel):
    ratio: float = Field(gt=0)


@pytest.mark.parametrize(
    ("model", "path", "expected", "required"),
    [
        (
            _IntOrStr,
            "port",
            {"description": "A port.", "x-kubernetes-int-or-string": True},
            True,
        ),
        (_Optional, "name", {"type": "string", "maxLength": 3}, False),
        (_Map, "labels", {"type": "object", "additionalProperties": {"type": "string"}}, True),
    ],
    ids=["int-or-string", "optional-is-not-required", "string-map"],
)
def test_converter_handles(
    model: type[BaseModel], path: str, expected: dict[str, Any], required: bool
) -> None:
    schema = convert_schema(model.model_json_schema(by_alias=True))
    assert schema["properties"][path] == expected
    assert (path in schema.get("required", [])) is required


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_ConstrainedUnion, "value: anyOf is supported only as Optional[X]"),
        (_TwoModels, "value: anyOf is supported only as Optional[X]"),
        (_Tree, "recursive $ref"),
        (_RequiredNullable, "name: a required field cannot be nullable"),
        (_Set, "tags: unsupported keyword(s) uniqueItems"),
        (_Exclusive, "ratio: unsupported keyword(s) exclusiveMinimum"),
    ],
    ids=["constrained-union", "union-of-models", "recursive", "required-nullable", "set", "gt"],
)
def test_converter_rejects_what_it_cannot_express(model: type[BaseModel], message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        convert_schema(model.model_json_schema(by_alias=True))
    assert message in str(caught.value)
