"""Where the served PromptVersions come from: manifest files, or the cluster (I/O).

Files: ``PROMPTS_DIR`` is read at start-up; an optional ``ROUTING_FILE``
(``{prompt: {version: weight}}``) overrides the local weights and is re-read when it
changes. Cluster: PromptVersions are listed and watched through the Kubernetes API
(read-only); every change rebuilds the registry from the weights in ``status``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from api.v1alpha1 import PromptVersion
from api.v1alpha1.manifests import ManifestError, load_manifests, parse_object
from prompting.rendering import CompiledPrompt
from service.catalog.catalog import Catalog
from service.catalog.registry import PromptRegistry

if TYPE_CHECKING:  # kubernetes_asyncio takes ~1.7 s to import: only cluster mode pays it
    from api.client import PromptVersionClient

__all__ = [
    "RoutingError",
    "load_file_registry",
    "parse_routing",
    "watch_cluster",
    "watch_routing_file",
]

_log = logging.getLogger(__name__)


class RoutingError(ValueError):
    """A routing file that is not `{prompt: {version: weight}}` with weights 0-100."""


def parse_routing(text: str) -> dict[str, dict[str, int]]:
    """The weights of a routing file (pure); RoutingError names what is wrong."""
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise RoutingError("a routing file maps prompt names to {version: weight}")
    routing: dict[str, dict[str, int]] = {}
    for prompt, weights in data.items():
        if not isinstance(weights, dict) or not weights:
            raise RoutingError(f"{prompt}: expected {{version: weight}}")
        for version, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
                raise RoutingError(f"{prompt} {version}: weight must be an integer 0-100")
        if sum(weights.values()) <= 0:
            raise RoutingError(f"{prompt}: at least one version needs a positive weight")
        routing[str(prompt)] = {str(v): int(w) for v, w in weights.items()}
    return routing


def load_file_registry(
    prompts_dir: Path, collections: set[str], routing_file: Path | None
) -> PromptRegistry:
    """The local registry, with the routing file's weights when one is given."""
    registry = PromptRegistry.from_resources(load_manifests(prompts_dir), collections)
    if routing_file is not None:
        registry = PromptRegistry.with_routing(registry, parse_routing(routing_file.read_text()))
    return registry


def _mtime(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


async def watch_routing_file(
    path: Path, base: PromptRegistry, catalog: Catalog, interval: float = 1.0
) -> None:
    """Re-apply the routing file whenever it changes (runs until cancelled)."""
    seen = await asyncio.to_thread(_mtime, path)
    while True:
        await asyncio.sleep(interval)
        current = await asyncio.to_thread(_mtime, path)
        if current == seen:
            continue
        seen = current
        try:
            text = await asyncio.to_thread(path.read_text) if current is not None else ""
            routing = parse_routing(text)
        except (OSError, yaml.YAMLError, RoutingError) as error:
            _log.error("routing file %s ignored: %s", path, error)
            continue
        catalog.replace(PromptRegistry.with_routing(base, routing))


def _parse(item: Mapping[str, Any], reported: set[tuple[Any, Any]]) -> PromptVersion | None:
    """The object as a PromptVersion, or None (logged once per spec generation)."""
    try:
        return parse_object(item)
    except ManifestError as error:
        metadata = item.get("metadata", {})
        seen = (metadata.get("uid") or _key(item), metadata.get("generation"))
        if seen not in reported:  # once per spec, not again on every status write
            reported.add(seen)
            _log.error("PromptVersion %s ignored: %s", _key(item), error)
        return None


async def watch_cluster(
    client: PromptVersionClient,
    catalog: Catalog,
    collections: set[str],
    *,
    retry_max: float = 10.0,
) -> None:
    """List, then watch PromptVersions; rebuild the catalog on every change (until cancelled).

    The informer pattern: list, then watch from the list's resourceVersion; when the watch
    ends it is resumed from the last event seen, and a 410 (history expired) lists again.
    """
    from api.client import KubeError  # noqa: PLC0415 - cluster mode only (import cost)

    compiled: dict[tuple[str, str], CompiledPrompt] = {}
    reported: set[tuple[Any, Any]] = set()  # unparseable objects already logged
    backoff = 0.5
    while True:
        try:
            items, version = await client.list()
            # Parsed once per event, not the whole set again on every change.
            resources = {_key(item): _parse(item, reported) for item in items}
            catalog.replace(_build(resources, collections, compiled))
            backoff = 0.5
            async for event in client.watch(version):
                if event.type == "ERROR":
                    raise KubeError(f"watch error: {event.object.get('message')}")
                if event.type == "BOOKMARK":
                    continue
                if event.type == "DELETED":
                    resources.pop(_key(event.object), None)
                else:
                    resources[_key(event.object)] = _parse(event.object, reported)
                catalog.replace(_build(resources, collections, compiled))
        except (KubeError, ValueError) as error:
            catalog.ready = catalog.ready and isinstance(error, KubeError) and error.status == 410
            _log.warning("PromptVersion watch: %s; relisting in %.1f s", error, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, retry_max)


def _key(item: Mapping[str, Any]) -> str:
    metadata = item.get("metadata", {})
    return f"{metadata.get('namespace')}/{metadata.get('name')}"


def _build(
    resources: Mapping[str, PromptVersion | None],
    collections: set[str],
    compiled: dict[tuple[str, str], CompiledPrompt],
) -> PromptRegistry:
    servable = [r for r in resources.values() if r is not None]
    return PromptRegistry.from_status(servable, collections, compiled)
