"""The fake model's structured output: minimal documents, and the invalid_json and off_schema
faults (pure builders as tables; the faults over real HTTP)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.structured import INVALID_JSON, build_off_schema, build_schema_instance
from tests.support.servers import serve_in_thread

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["category", "urgent", "count", "note", "tags", "meta"],
    "properties": {
        "category": {"enum": ["billing", "shipping"]},
        "urgent": {"type": "boolean"},
        "count": {"type": "integer"},
        "note": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "meta": {"type": "object", "required": ["id"], "properties": {"id": {"type": "number"}}},
        "optional": {"type": "string"},
    },
}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param(
            SCHEMA,
            {
                "category": "billing",
                "urgent": False,
                "count": 0,
                "note": "",
                "tags": [],
                "meta": {"id": 0},
            },
            id="required-only",
        ),
        pytest.param({"type": "string", "minLength": 3}, "xxx", id="min-length"),
        pytest.param({"type": "integer", "minimum": 5}, 5, id="minimum"),
        pytest.param({"type": "integer", "exclusiveMinimum": 5}, 6, id="exclusive-minimum"),
        pytest.param({"type": "array", "minItems": 2, "items": {"const": 7}}, [7, 7], id="items"),
        pytest.param({"type": ["null", "boolean"]}, False, id="type-list"),
        pytest.param({"anyOf": [{"type": "integer"}, {"type": "string"}]}, 0, id="any-of"),
        pytest.param(
            {
                "$defs": {"item": {"type": "object", "required": ["a"], "properties": {"a": {}}}},
                "type": "object",
                "required": ["x"],
                "properties": {"x": {"$ref": "#/$defs/item"}},
            },
            {"x": {"a": ""}},
            id="local-ref",
        ),
    ],
)
def test_the_minimal_document_meets_its_schema(schema: dict[str, Any], expected: Any) -> None:
    value = build_schema_instance(schema)

    assert value == expected
    assert build_schema_instance(schema) == value  # deterministic
    Draft202012Validator(schema).validate(value)


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param(SCHEMA, id="object-with-required"),
        pytest.param({"type": "object", "properties": {"a": {}}}, id="object-without-required"),
        pytest.param({"type": "array"}, id="array"),
        pytest.param({"type": "string"}, id="string"),
        pytest.param({"enum": ["a", "b"]}, id="enum"),
    ],
)
def test_the_off_schema_document_breaks_its_schema(schema: dict[str, Any]) -> None:
    assert not Draft202012Validator(schema).is_valid(build_off_schema(schema))


MESSAGES = [
    {"role": "system", "content": "Reply with one JSON object."},
    {"role": "user", "content": "Classify: I was charged twice."},
]
REPAIR = [
    *MESSAGES,
    {"role": "assistant", "content": INVALID_JSON},
    {"role": "user", "content": "Your previous reply did not meet the contract."},
]


@pytest.fixture
def state() -> FakeModelState:
    return FakeModelState(seed=11)


@pytest.fixture
def client(state: FakeModelState) -> Iterator[httpx.Client]:
    with (
        serve_in_thread(create_fake_model_app(state)) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        yield http


def _answer(client: httpx.Client, messages: list[dict[str, str]] = MESSAGES) -> str:
    body = {
        "model": "gpt-4o-mini",
        "messages": messages,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "triage", "schema": SCHEMA, "strict": False},
        },
    }
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


def _kind(answer: str) -> str:
    try:
        value = json.loads(answer)
    except ValueError:
        return "invalid_json"
    return "valid" if Draft202012Validator(SCHEMA).is_valid(value) else "off_schema"


def test_by_default_a_json_schema_request_gets_the_minimal_document(client: httpx.Client) -> None:
    assert json.loads(_answer(client)) == build_schema_instance(SCHEMA)


@pytest.mark.parametrize("fault", ["invalid_json", "off_schema"])
def test_a_fault_at_rate_one_breaks_every_answer_but_never_a_repair(
    client: httpx.Client, fault: str
) -> None:
    client.post("/admin/faults", json={f"{fault}_rate": 1.0}).raise_for_status()

    assert [_kind(_answer(client)) for _ in range(3)] == [fault] * 3
    assert _kind(_answer(client, REPAIR)) == "valid"


def test_fault_rates_split_answers_reproducibly(client: httpx.Client) -> None:
    faults = {"invalid_json_rate": 0.2, "off_schema_rate": 0.3}
    client.post("/admin/faults", json=faults).raise_for_status()
    first = Counter(_kind(_answer(client)) for _ in range(200))
    client.post("/admin/faults", json=faults).raise_for_status()  # reseeds the dice
    second = Counter(_kind(_answer(client)) for _ in range(200))

    assert first == second
    assert 20 <= first["invalid_json"] <= 60
    assert 40 <= first["off_schema"] <= 80
    assert first["valid"] == 200 - first["invalid_json"] - first["off_schema"]


def test_output_faults_leave_free_text_answers_alone(client: httpx.Client) -> None:
    client.post("/admin/faults", json={"invalid_json_rate": 1.0}).raise_for_status()
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    response = client.post("/v1/chat/completions", json=body)

    content = response.json()["choices"][0]["message"]["content"]
    assert content and content != INVALID_JSON
