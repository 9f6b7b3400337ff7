"""Docs drift: every setting, outcome, problem type and spec field is documented.

Names are read from the code, so adding a setting, an outcome, a problem type or a
spec field without documenting it fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from api.v1alpha1 import (
    Analysis,
    Guardrails,
    ModelSettings,
    PromptTemplate,
    PromptVersionSpec,
    Retrieval,
    Rollout,
    RolloutStep,
    Variable,
    Webhook,
)
from service.answering.outcome import Outcome
from service.http.problems import _MAPPING, _TYPE_PREFIX
from service.settings import list_variables

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: Problem types produced outside ``_MAPPING``: (slug, status).
EXTRA_PROBLEMS = [
    ("invalid-request", 422),
    ("body-too-large", 413),
    ("unauthenticated", 401),  # service.http.access
    ("forbidden", 403),
    ("tenant-quota-exceeded", 429),
]
PROBLEMS = [(slug, status) for _, status, slug, _ in _MAPPING] + EXTRA_PROBLEMS

#: Sub-objects of the spec, documented in their own tables of docs/prompts.md.
SPEC_PARTS: list[type[BaseModel]] = [
    PromptTemplate,
    Variable,
    ModelSettings,
    Retrieval,
    Guardrails,
    Rollout,
    RolloutStep,
    Analysis,
    Webhook,
]


def _read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _aliases(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


@pytest.mark.parametrize("variable", list_variables())
def test_every_setting_is_documented(variable: str) -> None:
    assert f"`{variable}`" in _read("configuration.md")


@pytest.mark.parametrize("outcome", list(Outcome), ids=str)
def test_every_outcome_is_documented(outcome: Outcome) -> None:
    assert f"`{outcome.value}`" in _read("api.md")


@pytest.mark.parametrize(("slug", "status"), PROBLEMS, ids=[slug for slug, _ in PROBLEMS])
def test_every_problem_type_is_documented_with_its_status(slug: str, status: int) -> None:
    urn = f"{_TYPE_PREFIX}{slug}"
    rows = [line for line in _read("api.md").splitlines() if line.startswith(f"| `{urn}`")]
    assert rows, f"docs/api.md has no table row for {urn}"
    assert f"| {status} |" in rows[0], f"docs/api.md gives {urn} another status than {status}"


@pytest.mark.parametrize("field", _aliases(PromptVersionSpec))
def test_every_spec_field_is_documented(field: str) -> None:
    assert f"| `{field}` |" in _read("prompts.md")


@pytest.mark.parametrize(
    ("part", "field"),
    [(part, field) for part in SPEC_PARTS for field in _aliases(part)],
    ids=[f"{part.__name__}.{field}" for part in SPEC_PARTS for field in _aliases(part)],
)
def test_every_nested_spec_field_is_documented(part: type[BaseModel], field: str) -> None:
    text = _read("prompts.md")
    assert f"`{field}`" in text or f".{field}`" in text, f"{part.__name__}.{field} is undocumented"
