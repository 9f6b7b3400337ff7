"""The eval-set file format: a prompt, its cases, and the checks each answer must pass (pure).

An eval set (YAML, see ``docs/evals.md``) names one prompt and its cases. Each case asks
one question and lists checks on the answer rather than a word-for-word expected answer.
Every check is also accepted under ``not:``, where it must fail. The format only grows:
every file valid before stays valid.

    parse_evalset(text) -> EvalSet   (or EvalSetError, naming the case and the field)

Errors::

    ValueError
    └── EvalSetError     the text is not a valid eval set; ``problems`` lists every finding
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Literal, Self

import yaml
from jsonschema import Draft202012Validator, SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from api.v1alpha1 import DNS_LABEL_PATTERN

__all__ = [
    "CHECK_NAMES",
    "Checks",
    "EvalCase",
    "EvalSet",
    "EvalSetError",
    "Expectation",
    "Rubric",
    "Similarity",
    "parse_evalset",
]

ExpectedOutcome = Literal["answered", "fallback", "unknown", "refused"]
Scalar = str | int | float | bool | None


class Similarity(BaseModel):
    """`similar_to`: the answer's cosine similarity to a reference answer is at least `min`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, max_length=4000)
    min: float = Field(default=0.7, ge=-1.0, le=1.0)


class Rubric(BaseModel):
    """`llm_rubric`: a judge model scores the answer against the rubric (0..1), at least `min`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rubric: str = Field(min_length=1, max_length=4000)
    min: float = Field(default=0.7, ge=0.0, le=1.0)


class Checks(BaseModel):
    """The checks one answer must pass; every one that is set must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: list[ExpectedOutcome] | None = Field(
        default=None, min_length=1, description="The outcome, or a list of acceptable ones."
    )
    sources_any: list[str] | None = Field(
        default=None, min_length=1, description="At least one of these files is cited."
    )
    cites_all: list[str] | None = Field(
        default=None, min_length=1, description="Every one of these files is cited."
    )
    contains_any: list[str] | None = Field(
        default=None, min_length=1, description="At least one phrase is in the answer (any case)."
    )
    contains_all: list[str] | None = Field(
        default=None, min_length=1, description="Every phrase is in the answer (any case)."
    )
    not_contains: list[str] | None = Field(
        default=None, min_length=1, description="No phrase is in the answer (any case)."
    )
    regex: str | None = Field(
        default=None, min_length=1, max_length=1000, description="re.search finds it."
    )
    json_schema: dict[str, Any] | None = Field(
        default=None, description="The answer is JSON valid against this JSON Schema."
    )
    max_tokens: int | None = Field(default=None, ge=1, description="Output tokens at most.")
    max_latency_ms: float | None = Field(default=None, gt=0)
    similar_to: Similarity | None = None
    llm_rubric: Rubric | None = None

    @field_validator("outcome", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("sources_any", "cites_all", "contains_any", "contains_all", "not_contains")
    @classmethod
    def _no_blank_entries(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not entry.strip() for entry in value):
            raise ValueError("entries must not be blank")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"not a valid regular expression: {error}") from None
        return value

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                Draft202012Validator.check_schema(value)
            except SchemaError as error:
                raise ValueError(f"not a valid JSON Schema: {error.message}") from None
        return value

    def given(self) -> list[str]:
        """The names of the checks that are set, in declaration order."""
        return [name for name in CHECK_NAMES if getattr(self, name) is not None]


#: Every check, in the order they are evaluated and reported.
CHECK_NAMES: tuple[str, ...] = tuple(Checks.model_fields)


class Expectation(Checks):
    """The checks that must pass, and under `not` the checks that must fail."""

    negated: Checks | None = Field(
        default=None, alias="not", description="Checks that must each fail."
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _checks_something(self) -> Self:
        if not self.given() and (self.negated is None or not self.negated.given()):
            raise ValueError(
                "give at least one check: " + ", ".join(CHECK_NAMES) + " (or one under not)"
            )
        return self


class EvalCase(BaseModel):
    """One question and what its answer must satisfy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Ids land in Markdown tables and JUnit names: no spaces, no pipes.
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    question: str = Field(min_length=1, max_length=4000)
    variables: dict[str, Scalar] = Field(default_factory=dict)
    user: str | None = Field(default=None, max_length=256)
    weight: float = Field(default=1.0, gt=0, le=1000, description="Share in the pass rate.")
    expect: Expectation


class EvalSet(BaseModel):
    """A prompt and the cases its versions are judged on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63)
    cases: list[EvalCase] = Field(min_length=1)

    @field_validator("cases")
    @classmethod
    def _unique_ids(cls, cases: list[EvalCase]) -> list[EvalCase]:
        seen: set[str] = set()
        for case in cases:
            if case.id in seen:
                raise ValueError(f"duplicate case id {case.id!r}")
            seen.add(case.id)
        return cases

    def digest(self) -> str:
        """A short fingerprint of the cases and checks (to spot a changed eval set)."""
        dumped = self.model_dump_json(by_alias=True, exclude_none=True)
        return hashlib.sha256(dumped.encode()).hexdigest()[:16]

    def uses(self, check: str) -> bool:
        """Whether any case uses `check`, plain or under `not`."""
        return any(
            getattr(c.expect, check) is not None
            or (c.expect.negated is not None and getattr(c.expect.negated, check) is not None)
            for c in self.cases
        )


class EvalSetError(ValueError):
    """The text is not a valid eval set; `problems` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_evalset(text: str) -> EvalSet:
    """The eval set in a YAML text; problems name the case by its id and the field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise EvalSetError([f"not valid YAML: {error}"]) from error
    if not isinstance(data, dict):
        raise EvalSetError(["the file must be a mapping with `prompt` and `cases`"])
    try:
        return EvalSet.model_validate(data)
    except ValidationError as error:
        raise EvalSetError([_describe(e, data) for e in error.errors()]) from error


def _describe(error: Any, data: Mapping[str, Any]) -> str:
    """`case 'refund-window' expect.outcome[0]: Input should be ...` for one pydantic error."""
    loc: tuple[int | str, ...] = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    where = ""
    if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int):
        where = _case_name(data.get("cases"), loc[1])
        loc = loc[2:]
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    head = " ".join(p for p in (where, path) if p)
    return f"{head}: {message}" if head else message


def _case_name(cases: object, index: int) -> str:
    raw = cases[index] if isinstance(cases, list) and index < len(cases) else None
    case_id = raw.get("id") if isinstance(raw, dict) else None
    return f"case {case_id!r}" if isinstance(case_id, str) else f"case #{index + 1}"
