"""Turning PromptVersion objects into the state machine's views (pure)."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import semver

from api.v1alpha1 import PromptVersionStatus
from api.v1alpha1.manifests import ManifestError, parse_object
from controller.rollout import REQUEST_ANNOTATION, VersionView, parse_request
from service.registry import check_servable

__all__ = ["build_view", "choose_actor"]


def build_view(
    body: Mapping[str, Any], servable: MutableMapping[tuple[Any, Any], str | None] | None = None
) -> VersionView | str:
    """The view of one object, or why its spec is invalid (rules the CRD could not check).

    `servable` caches check_servable's verdict by (uid, generation): a spec never
    changes under one generation, so its templates are parsed once, not every tick.
    """
    try:
        resource = parse_object(body)
    except ManifestError as error:
        return "; ".join(f"{p.field}: {p.message}" for p in error.problems)
    metadata = body.get("metadata") or {}
    key = (metadata.get("uid"), metadata.get("generation"))
    cache = servable if servable is not None and key[0] is not None else {}
    if key not in cache:
        cache[key] = check_servable(resource, None)
    annotations = metadata.get("annotations") or {}
    return VersionView(
        name=resource.metadata.name,
        spec=resource.spec,
        status=resource.status or PromptVersionStatus(),
        invalid_reason=cache[key],
        request=parse_request(annotations.get(REQUEST_ANNOTATION)),
    )


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
