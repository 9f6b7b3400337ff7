"""Declarative HTTP tools of a PromptVersion (``spec.tools``, ``spec.maxToolRounds``).

A tool is a JSON-Schema-typed function the model may call; the service calls the
tool's HTTP endpoint for it. Header values never hold secrets literally: they name an
environment variable or a Secret key that the service reads at call time.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "DEFAULT_MAX_TOOL_ROUNDS",
    "HeaderSource",
    "SecretKeyRef",
    "Tool",
    "ToolHeader",
    "ToolHttp",
    "find_placeholders",
]

#: Rounds of tool calls per answer when a version does not say.
DEFAULT_MAX_TOOL_ROUNDS = 3
TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def find_placeholders(url: str) -> list[str]:
    """The ``{name}`` placeholders of a tool URL, in order (pure)."""
    return _PLACEHOLDER.findall(url)


def _refs(node: Any) -> list[str]:
    """Every ``$ref`` string in a schema."""
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


class SecretKeyRef(_Model):
    """One key of a Kubernetes Secret (mounted into the service under TOOL_SECRETS_DIR)."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)


class HeaderSource(_Model):
    """Where a header's value comes from: exactly one of `env` or `secretKeyRef`."""

    env: str | None = Field(
        default=None, pattern=ENV_NAME_PATTERN, description="Environment variable of the service."
    )
    secret_key_ref: SecretKeyRef | None = Field(
        default=None, description="A key of a Secret mounted under TOOL_SECRETS_DIR."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.env is None) == (self.secret_key_ref is None):
            raise ValueError("valueFrom needs exactly one of env or secretKeyRef")
        return self


class ToolHeader(_Model):
    """A request header whose value is read from the environment or a Secret, never literal."""

    name: str = Field(pattern=HEADER_NAME_PATTERN, description="Header name.")
    value_from: HeaderSource = Field(description="Where the value is read from.")


class ToolHttp(_Model):
    """The HTTP request a tool call becomes."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(
        default="GET", description="HTTP method."
    )
    url: str = Field(
        min_length=8,
        max_length=2048,
        description="http(s) URL; {param} placeholders are filled URL-encoded from arguments. "
        "Arguments not in the URL go in the query (GET, DELETE) or a JSON body.",
    )
    headers: list[ToolHeader] = Field(default_factory=list, description="Headers from secrets.")
    timeout_seconds: float = Field(
        default=5.0, ge=0.1, le=60, description="Time allowed for the call, within the deadline."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        for name in find_placeholders(url):
            if not _PARAMETER_NAME.match(name):
                raise ValueError(f"url placeholder {{{name}}} is not a parameter name")
        probe = _PLACEHOLDER.sub("x", url)
        parts = urlsplit(probe)
        if parts.scheme not in ("http", "https"):
            raise ValueError("url must be http:// or https://")
        if not parts.hostname or "{" in urlsplit(url).netloc:
            raise ValueError("url must name a fixed host (no placeholders in the host)")
        if parts.username or parts.password:
            raise ValueError("url must not carry credentials")
        return url

    @model_validator(mode="after")
    def _unique_headers(self) -> Self:
        names = [h.name.lower() for h in self.headers]
        if len(names) != len(set(names)):
            raise ValueError("header names must be unique")
        return self


class Tool(_Model):
    """A function the model may call, answered by an HTTP endpoint."""

    name: str = Field(pattern=TOOL_NAME_PATTERN, description="Function name the model sees.")
    description: str = Field(min_length=1, max_length=1024, description="What the tool does.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema (an object schema) of the arguments.",
    )
    http: ToolHttp = Field(description="The HTTP request a call becomes.")

    @field_validator("parameters")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        # Deferred: jsonschema loads with the first schema, not at start-up.
        from jsonschema import Draft202012Validator  # noqa: PLC0415
        from jsonschema.exceptions import SchemaError  # noqa: PLC0415

        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as error:
            raise ValueError(f"parameters is not a valid JSON Schema: {error.message}") from error
        if any(not ref.startswith("#") for ref in _refs(schema)):
            raise ValueError("parameters may only use local $ref (#/...): nothing is fetched")
        if schema.get("type") != "object":
            raise ValueError('parameters must be an object schema ("type": "object")')
        return schema

    @model_validator(mode="after")
    def _placeholders_are_parameters(self) -> Self:
        declared = set((self.parameters.get("properties") or {}).keys())
        required = set(self.parameters.get("required") or [])
        for name in find_placeholders(self.http.url):
            if name not in declared:
                raise ValueError(f"url placeholder {{{name}}} is not a declared parameter")
            if name not in required:
                raise ValueError(f"url placeholder {{{name}}} must be a required parameter")
        return self
