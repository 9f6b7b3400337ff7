"""The PromptVersion CustomResourceDefinition, generated from the pydantic models.

``build_crd`` turns the JSON schema pydantic writes for ``PromptVersionSpec`` and
``PromptVersionStatus`` into a Kubernetes *structural* OpenAPI v3 schema:
``$ref`` inlined, ``Optional[X]`` reduced to an optional ``X``, scalar unions
escaped with ``x-kubernetes-*`` markers, ``additionalProperties: false`` removed
(the API server prunes unknown fields; kubectl's strict field validation rejects
them). Any construct the converter (:mod:`api.v1alpha1.schema`) does not know raises
``SchemaError`` instead of producing a CRD that silently disagrees with the models.
"""

from __future__ import annotations

from typing import Any

from api.v1alpha1.schema import SchemaError, convert_schema, order_keys
from api.v1alpha1.types import GROUP, KIND, VERSION, PromptVersionSpec, PromptVersionStatus

__all__ = [
    "CATEGORY",
    "CRD_NAME",
    "IMMUTABLE_SPEC_RULE",
    "LIST_KIND",
    "PLURAL",
    "SHORT_NAME",
    "SINGULAR",
    "SchemaError",
    "build_crd",
    "build_openapi_schema",
    "convert_schema",
]

PLURAL = "promptversions"
SINGULAR = "promptversion"
LIST_KIND = f"{KIND}List"
SHORT_NAME = "pver"
CATEGORY = "prompt-rollouts"
CRD_NAME = f"{PLURAL}.{GROUP}"

#: CEL rule making the whole spec immutable once created.
IMMUTABLE_SPEC_RULE: dict[str, str] = {
    "rule": "self == oldSelf",
    "message": "spec is immutable: apply a new PromptVersion (a new version) instead",
}

_ROOT_DESCRIPTION = (
    "One immutable version of an LLM prompt, delivered progressively: canary steps "
    "with automatic analysis and rollback."
)


def build_openapi_schema() -> dict[str, Any]:
    """The ``openAPIV3Schema`` of PromptVersion."""
    spec = convert_schema(PromptVersionSpec.model_json_schema(by_alias=True))
    spec = order_keys({**spec, "x-kubernetes-validations": [dict(IMMUTABLE_SPEC_RULE)]})
    status = convert_schema(PromptVersionStatus.model_json_schema(by_alias=True))
    return {
        "description": _ROOT_DESCRIPTION,
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "description": "Versioned schema of this object: promptrollouts.io/v1alpha1.",
                "type": "string",
            },
            "kind": {"description": "Kind of this object: PromptVersion.", "type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def build_crd() -> dict[str, Any]:
    """The complete ``apiextensions.k8s.io/v1`` CustomResourceDefinition."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": LIST_KIND,
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": [SHORT_NAME],
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(),
                    "schema": {"openAPIV3Schema": build_openapi_schema()},
                }
            ],
        },
    }


def _printer_columns() -> list[dict[str, Any]]:
    columns = [
        ("Prompt", "string", ".spec.prompt", "Logical prompt name.", 0),
        ("Version", "string", ".spec.version", "Semantic version.", 0),
        ("Phase", "string", ".status.phase", "Lifecycle phase.", 0),
        ("Weight", "integer", ".status.weight", "Percent of traffic.", 0),
        ("Step", "integer", ".status.stepIndex", "Current rollout step.", 0),
        ("Kind", "string", ".status.stepKind", "Step kind: Canary (live) or Shadow.", 0),
        # A whole sentence: shown by `kubectl get pver -o wide`.
        ("Quality", "string", ".status.quality", "Quality verdict and its reason.", 1),
        ("Age", "date", ".metadata.creationTimestamp", "", 0),
    ]
    return [
        {"name": name, "type": kind, "jsonPath": path}
        | ({"description": text} if text else {})
        | ({"priority": priority} if priority else {})
        for name, kind, path, text, priority in columns
    ]
