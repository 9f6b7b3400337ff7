"""Turning PromptVersion objects into the state machine's views (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import semver
from pydantic import ValidationError

from api.v1alpha1 import Condition, Phase, PromptVersionStatus
from api.v1alpha1.manifests import ManifestError, parse_object
from controller.conditions import read_conditions
from controller.versions import (
    REQUEST_ANNOTATION,
    UnreadableVersion,
    VersionView,
    parse_request,
)
from prompting.servability import check_servable

__all__ = ["build_view", "build_views", "choose_actor"]


def build_views(
    bodies: Iterable[Mapping[str, Any]],
    servable: MutableMapping[tuple[Any, Any], str | None] | None = None,
) -> tuple[list[VersionView], list[UnreadableVersion]]:
    """The views of one prompt's objects, and the objects whose spec could not be read."""
    views: list[VersionView] = []
    unreadable: list[UnreadableVersion] = []
    for body in bodies:
        view = build_view(body, servable)
        if isinstance(view, VersionView):
            views.append(view)
        else:
            unreadable.append(view)
    return views, unreadable


def build_view(
    body: Mapping[str, Any], servable: MutableMapping[tuple[Any, Any], str | None] | None = None
) -> VersionView | UnreadableVersion:
    """The view of one object, or why its spec is invalid (rules the CRD could not check).

    `servable` caches check_servable's verdict by (uid, generation): a spec never
    changes under one generation, so its templates are parsed once, not every tick.
    """
    try:
        resource = parse_object(body)
    except ManifestError as error:
        reason = "; ".join(f"{p.field}: {p.message}" for p in error.problems)
        return _unreadable(body, reason)
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


def _unreadable(body: Mapping[str, Any], reason: str) -> UnreadableVersion:
    """What can still be read of an object whose spec could not be: its phase and conditions."""
    name = str((body.get("metadata") or {}).get("name"))
    status = body.get("status")
    status = status if isinstance(status, Mapping) else {}
    try:
        phase: Phase | None = Phase(str(status.get("phase")))
    except ValueError:
        phase = None
    conditions: list[Condition] = []
    stored = status.get("conditions")
    for item in stored if isinstance(stored, list) else []:
        try:
            conditions.append(Condition.model_validate(item))
        except ValidationError:
            continue  # not a condition: the patch leaves it out
    return UnreadableVersion(name, reason, phase, tuple(read_conditions(conditions)))


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
