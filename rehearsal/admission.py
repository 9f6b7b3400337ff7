"""What a real API server checks before it stores a custom resource: the emulator's admission.

kmock stores whatever it is sent. A kube-apiserver, for a CRD with a structural schema:

- prunes fields the schema does not declare (unless ``x-kubernetes-preserve-unknown-fields``),
  or rejects them when the client asks for ``fieldValidation=Strict`` (kubectl's default);
- validates the object against the served version's ``openAPIV3Schema``: types, required
  fields, enums, patterns, bounds (here with jsonschema, which ignores the ``x-kubernetes-*``
  keywords that are not JSON Schema);
- evaluates every ``x-kubernetes-validations`` CEL rule (here with cel-python), ``self`` bound
  to the node's value and, on updates, ``oldSelf`` to its previous value; transition rules
  (those naming ``oldSelf``) are skipped on create and where the old value is absent.

`admit` does the same (pure) and returns the stored object, or raises `InvalidObjectError` with the
causes the API server would list ("spec.version: Invalid value: ...").
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import celpy
import jsonschema
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

__all__ = ["InvalidObjectError", "admit"]

_ROOT_FIELDS = {"apiVersion", "kind", "metadata"}  # always kept, whatever the schema says


class InvalidObjectError(Exception):
    """The object breaks its schema or a validation rule; `causes` says where and how."""

    def __init__(self, causes: list[str]) -> None:
        super().__init__("; ".join(causes))
        self.causes = causes


def admit(
    schema: Mapping[str, Any],
    new: Mapping[str, Any],
    old: Mapping[str, Any] | None = None,
    *,
    strict: bool = False,
) -> dict[str, Any]:
    """The object as stored (pruned), or InvalidObjectError naming every problem (pure)."""
    unknown: list[str] = []
    stored: dict[str, Any] = _prune(schema, copy.deepcopy(dict(new)), "", unknown, root=True)
    causes = [f"{path}: unknown field" for path in unknown] if strict else []
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(stored), key=lambda e: list(e.absolute_path)):
        causes.append(f"{_dotted(error.absolute_path)}: Invalid value: {error.message}")
    causes += list(_rule_failures(schema, stored, old, ""))
    if causes:
        raise InvalidObjectError(causes)
    return stored


def _prune(
    schema: Mapping[str, Any], value: Any, path: str, unknown: list[str], *, root: bool = False
) -> Any:
    """Drop (and list) the fields that `schema` does not declare."""
    if isinstance(value, dict) and schema.get("type") == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return value
        properties: Mapping[str, Any] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key in list(value):
            child = f"{path}.{key}" if path else key
            if root and key in _ROOT_FIELDS:
                continue
            if key in properties:
                value[key] = _prune(properties[key], value[key], child, unknown)
            elif isinstance(extra, Mapping):
                value[key] = _prune(extra, value[key], child, unknown)
            elif not properties and extra is None:
                continue  # a free-form object (e.g. metadata): nothing to prune
            else:
                unknown.append(child)
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [
            _prune(schema["items"], item, f"{path}[{index}]", unknown)
            for index, item in enumerate(value)
        ]
    return value


def _rule_failures(schema: Mapping[str, Any], value: Any, old: Any, path: str) -> Iterator[str]:
    """Every CEL rule in `schema` that `value` breaks, depth first."""
    for rule in schema.get("x-kubernetes-validations") or ():
        expression = str(rule["rule"])
        transition = "oldSelf" in expression
        if transition and old is None:
            continue
        if not _holds(expression, value, old if transition else None):
            message = rule.get("message") or f"failed rule: {expression}"
            yield f"{path or '<root>'}: Invalid value: {message}"
    if isinstance(value, Mapping):
        old_map = old if isinstance(old, Mapping) else {}
        for key, child in (schema.get("properties") or {}).items():
            if key in value:
                yield from _rule_failures(
                    child, value[key], old_map.get(key), f"{path}.{key}" if path else key
                )
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from _rule_failures(schema["items"], item, None, f"{path}[{index}]")


def _holds(expression: str, value: Any, old: Any) -> bool:
    """Evaluate one rule; an evaluation error is a failure, as the API server treats it."""
    environment = celpy.Environment()
    program = environment.program(environment.compile(expression))
    activation: dict[str, Any] = {"self": json_to_cel(value)}
    if old is not None:
        activation["oldSelf"] = json_to_cel(old)
    try:
        return bool(program.evaluate(activation))
    except CELEvalError:
        return False


def _dotted(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<root>"
