"""``spec.output``: the output contract of a PromptVersion (a JSON Schema the answer must meet).

The schema itself is checked when the manifest is parsed (``Draft202012Validator.check_schema``),
and bounded in size and depth, so a broken or oversized contract never reaches the service:
the controller marks such a PromptVersion ``Invalid`` and ``promptctl lint`` names the problem.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "MAX_OUTPUT_SCHEMA_BYTES",
    "MAX_OUTPUT_SCHEMA_DEPTH",
    "OutputContract",
    "assess_output_schema",
    "measure_depth",
]

#: Largest accepted schema, serialised as compact JSON.
MAX_OUTPUT_SCHEMA_BYTES = 32 * 1024
#: Deepest accepted nesting of objects and arrays in the schema document.
MAX_OUTPUT_SCHEMA_DEPTH = 32


def measure_depth(value: object) -> int:
    """Nesting depth of objects and arrays in a JSON value, without recursion (pure)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            depth += 1
            stack.extend((child, depth) for child in node.values())
        elif isinstance(node, list):
            depth += 1
            stack.extend((child, depth) for child in node)
        deepest = max(deepest, depth)
    return deepest


def _external_refs(schema: object) -> list[str]:
    """``$ref`` values that point outside the schema document (never fetched)."""
    found: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                found.append(ref)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def assess_output_schema(schema: dict[str, Any]) -> str | None:
    """What is wrong with an output schema, or None (pure).

    Bounded first (depth, then size: the serialiser and the checker below recurse), then
    checked against the JSON Schema 2020-12 meta-schema; ``$ref`` may only point inside the
    document.
    """
    depth = measure_depth(schema)
    if depth > MAX_OUTPUT_SCHEMA_DEPTH:
        return f"schema nests {depth} levels deep, more than the {MAX_OUTPUT_SCHEMA_DEPTH} allowed"
    try:
        size = len(json.dumps(schema, separators=(",", ":")).encode())
    except (TypeError, ValueError, RecursionError):
        return "schema is not a JSON document"
    if size > MAX_OUTPUT_SCHEMA_BYTES:
        return f"schema is {size} bytes of JSON, more than the {MAX_OUTPUT_SCHEMA_BYTES} allowed"
    external = _external_refs(schema)
    if external:
        return f"schema $ref must point inside the schema ('#...'), got {external[0]!r}"
    # Deferred: jsonschema loads with the first schema, not at start-up.
    from jsonschema import Draft202012Validator  # noqa: PLC0415
    from jsonschema.exceptions import SchemaError  # noqa: PLC0415

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "<root>"
        return f"schema is not a valid JSON Schema (2020-12) at {where}: {error.message}"
    return None


class OutputContract(BaseModel):
    """What the answer must be: JSON meeting `schema`, repaired up to `repair` times."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    format: Literal["json"] = Field(default="json", description="The answer's format.")
    schema_: dict[str, Any] = Field(
        alias="schema",
        description="JSON Schema (2020-12) the answer must validate against; at most "
        f"{MAX_OUTPUT_SCHEMA_BYTES} bytes and {MAX_OUTPUT_SCHEMA_DEPTH} levels deep.",
    )
    repair: int = Field(
        default=1,
        ge=0,
        le=3,
        description="Follow-up calls carrying the validation error when the answer breaks "
        "the schema, all within the request's deadline.",
    )
    strict: bool = Field(
        default=False,
        description="Sent upstream as json_schema.strict (OpenAI's strict mode needs every "
        "property required and additionalProperties false).",
    )

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        problem = assess_output_schema(schema)
        if problem is not None:
            raise ValueError(problem)
        return schema
