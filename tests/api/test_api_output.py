"""``spec.output``: the output contract is checked (and bounded) when the manifest is parsed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.v1alpha1 import (
    MAX_OUTPUT_SCHEMA_BYTES,
    MAX_OUTPUT_SCHEMA_DEPTH,
    OutputContract,
    PromptVersion,
)

SCHEMA = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"enum": ["open", "closed"]}},
}


def _version(output: dict[str, Any]) -> PromptVersion:
    return PromptVersion.model_validate(
        {
            "apiVersion": "promptrollouts.io/v1alpha1",
            "kind": "PromptVersion",
            "metadata": {"name": "triage-1-0-0"},
            "spec": {
                "prompt": "triage",
                "version": "1.0.0",
                "owner": "team",
                "template": {"system": "Reply in JSON.", "user": "{{ question }}"},
                "model": {"name": "gpt-4o-mini"},
                "output": output,
            },
        }
    )


def _nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return schema


def test_a_valid_contract_parses_with_its_defaults() -> None:
    output = _version({"schema": SCHEMA}).spec.output

    expected = {"format": "json", "schema": SCHEMA, "repair": 1, "strict": False}
    assert output == OutputContract.model_validate(expected)
    assert output.schema_ == SCHEMA


def test_a_version_without_output_has_none() -> None:
    spec = _version({"schema": SCHEMA}).spec.model_copy(update={"output": None})
    assert spec.output is None


@pytest.mark.parametrize(
    ("output", "message"),
    [
        pytest.param(
            {"schema": {"type": "dictionary"}},
            "not a valid JSON Schema (2020-12) at type",
            id="unknown-type",
        ),
        pytest.param(
            {"schema": {"type": "object", "required": "status"}},
            "not a valid JSON Schema (2020-12) at required",
            id="required-not-a-list",
        ),
        pytest.param(
            {"schema": {"type": "string", "minLength": -1}},
            "at minLength",
            id="negative-min-length",
        ),
        pytest.param(
            {"schema": {"properties": {"a": "a string is not a schema"}}},
            "at properties/a",
            id="property-not-a-schema",
        ),
        pytest.param(
            {"schema": {"$ref": "https://example.com/schema.json"}},
            "$ref must point inside the schema",
            id="remote-ref",
        ),
        pytest.param(
            {"schema": {"type": "string", "description": "x" * MAX_OUTPUT_SCHEMA_BYTES}},
            f"more than the {MAX_OUTPUT_SCHEMA_BYTES} allowed",
            id="huge",
        ),
        pytest.param(
            {"schema": _nested(MAX_OUTPUT_SCHEMA_DEPTH)},
            f"more than the {MAX_OUTPUT_SCHEMA_DEPTH} allowed",
            id="deep",
        ),
        pytest.param({"schema": SCHEMA, "repair": 4}, "less than or equal to 3", id="repair>3"),
        pytest.param({"schema": SCHEMA, "repair": -1}, "greater than or equal to 0", id="repair<0"),
        pytest.param({"schema": SCHEMA, "format": "yaml"}, "'json'", id="format-not-json"),
        pytest.param({"schema": SCHEMA, "retries": 1}, "Extra inputs", id="unknown-field"),
        pytest.param({"repair": 1}, "schema", id="no-schema"),
    ],
)
def test_a_broken_contract_is_rejected_naming_the_problem(
    output: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _version(output)

    text = str(caught.value)
    assert "spec.output" in text
    assert message in text


def test_the_size_bound_is_checked_before_the_meta_schema() -> None:
    # A schema too deep for a recursive checker is refused by the bound, not by a crash.
    with pytest.raises(ValidationError, match="levels deep"):
        _version({"schema": _nested(5000)})


def test_a_schema_just_inside_the_bounds_is_accepted() -> None:
    output = _version({"schema": _nested(MAX_OUTPUT_SCHEMA_DEPTH - 1)}).spec.output
    assert output is not None
