"""Turning PromptVersion objects into the state machine's views (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import semver
from pydantic import ValidationError

from api.v1alpha1 import PromptVersion, PromptVersionSpec, PromptVersionStatus
from controller.rollout import REQUEST_ANNOTATION, VersionView, parse_request
from service.registry import check_servable

__all__ = ["build_view", "choose_actor", "describe_errors"]


def build_view(body: Mapping[str, Any]) -> VersionView | str:
    """The view of one object, or why its spec is invalid (rules the CRD could not check)."""
    metadata = body.get("metadata") or {}
    try:
        spec = PromptVersionSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        return describe_errors(error)
    try:
        status = PromptVersionStatus.model_validate(_known_status(body.get("status") or {}))
    except ValidationError:
        status = PromptVersionStatus()
    resource = PromptVersion.model_validate(
        {
            "apiVersion": body.get("apiVersion", "promptrollouts.io/v1alpha1"),
            "kind": "PromptVersion",
            "metadata": {"name": metadata.get("name"), "namespace": metadata.get("namespace")},
            "spec": spec.model_dump(by_alias=True),
        }
    )
    annotations = metadata.get("annotations") or {}
    return VersionView(
        name=str(metadata.get("name")),
        spec=spec,
        status=status,
        invalid_reason=check_servable(resource, None),
        request=parse_request(annotations.get(REQUEST_ANNOTATION)),
    )


def describe_errors(error: ValidationError) -> str:
    """Pydantic errors as one line: `spec.rollout.steps: Value error, ...; ...`."""
    parts = []
    for detail in error.errors():
        where = ".".join(str(p) for p in ("spec", *detail["loc"]))
        parts.append(f"{where}: {detail['msg']}")
    return "; ".join(parts)


def _known_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """The status fields we own (kopf or others may add their own)."""
    fields = set(PromptVersionStatus.model_json_schema(by_alias=True)["properties"])
    return {k: v for k, v in status.items() if k in fields}


def choose_actor(bodies: list[Mapping[str, Any]]) -> str | None:
    """The one object whose timer reconciles its prompt this tick: the newest version's."""
    best: tuple[semver.Version, str] | None = None
    for body in bodies:
        name = str((body.get("metadata") or {}).get("name"))
        try:
            version = semver.Version.parse(str((body.get("spec") or {}).get("version")))
        except (TypeError, ValueError):
            continue
        if best is None or (version, name) > best:
            best = (version, name)
    return best[1] if best else None
