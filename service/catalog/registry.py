"""The PromptVersions this service can serve, their weights, and which one answers a request.

Locally (no cluster) every prompt's highest valid version is ``Stable`` at weight 100
and older ones are ``Superseded`` at 0; versions that cannot be served are
``Invalid`` with a reason. The controller replaces this assignment with the
canary weights it writes to ``status``. Choosing among weighted versions is a pure,
sticky function of a routing key: the same user lands on the same version.

A loaded version is one of two types: a :class:`ServedVersion` has compiled templates
and can answer; an :class:`InvalidVersion` cannot, and says why. :meth:`PromptRegistry.select`
returns only the first, so the pipeline never meets a version without templates.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import semver

from api.v1alpha1 import Phase, PromptVersion
from prompting.rendering import CompiledPrompt, compile_prompt
from prompting.servability import check_servable
from service.errors import PromptNotFoundError

__all__ = [
    "InvalidVersion",
    "LoadedVersion",
    "PromptRegistry",
    "ServedVersion",
    "assign_local_weights",
    "choose_by_weight",
    "decide_shadow_percent",
]


@dataclass(frozen=True)
class ServedVersion:
    """A servable PromptVersion: its compiled templates, phase and traffic share."""

    resource: PromptVersion
    compiled: CompiledPrompt
    phase: Phase
    weight: int
    message: str | None = None
    #: Percent of the prompt's requests this version answers in the background (a shadow
    #: step: never returned to a client); 0 outside a shadow step.
    shadow_percent: int = 0

    @property
    def prompt(self) -> str:
        """The logical prompt name."""
        return self.resource.spec.prompt

    @property
    def version(self) -> str:
        """The semantic version."""
        return self.resource.spec.version


@dataclass(frozen=True)
class InvalidVersion:
    """A loaded PromptVersion that cannot be served: phase Invalid, weight 0, and why."""

    resource: PromptVersion
    #: Why it cannot be served.
    message: str | None

    @property
    def phase(self) -> Phase:
        """Always Invalid."""
        return Phase.INVALID

    @property
    def weight(self) -> int:
        """Always 0: it takes no traffic."""
        return 0

    @property
    def prompt(self) -> str:
        """The logical prompt name."""
        return self.resource.spec.prompt

    @property
    def version(self) -> str:
        """The semantic version."""
        return self.resource.spec.version


#: Any version the registry holds.
LoadedVersion = ServedVersion | InvalidVersion


def assign_local_weights(
    resources: Iterable[PromptVersion], problems: dict[str, str]
) -> list[tuple[PromptVersion, Phase, int, str | None]]:
    """Phase and weight of each resource without a controller (pure).

    The highest valid release is Stable at 100; a pre-release is chosen only when a
    prompt has no valid release. `problems` maps metadata.name to the reason a
    resource cannot be served.
    """
    by_prompt: dict[str, list[PromptVersion]] = {}
    for resource in resources:
        by_prompt.setdefault(resource.spec.prompt, []).append(resource)
    assigned: list[tuple[PromptVersion, Phase, int, str | None]] = []
    for prompt in sorted(by_prompt):
        ordered = sorted(
            by_prompt[prompt], key=lambda r: semver.Version.parse(r.spec.version), reverse=True
        )
        reasons: dict[int, str] = {}
        seen: set[str] = set()
        for index, resource in enumerate(ordered):
            reason = problems.get(resource.metadata.name)
            if reason is None and resource.spec.version in seen:
                reason = f"version {resource.spec.version} of {prompt} is declared twice"
            seen.add(resource.spec.version)
            if reason is not None:
                reasons[index] = reason
        valid = [i for i in range(len(ordered)) if i not in reasons]
        releases = [
            i for i in valid if not semver.Version.parse(ordered[i].spec.version).prerelease
        ]
        stable = (releases or valid)[0] if valid else None
        for index, resource in enumerate(ordered):
            if index in reasons:
                assigned.append((resource, Phase.INVALID, 0, reasons[index]))
            elif index == stable:
                assigned.append((resource, Phase.STABLE, 100, None))
            else:
                assigned.append(
                    (
                        resource,
                        Phase.SUPERSEDED,
                        0,
                        f"{ordered[stable].spec.version} is stable" if stable is not None else None,
                    )
                )
    return assigned


def decide_shadow_percent(phase: Phase, weight: int, shadow_percent: int | None) -> int:
    """The share of requests a version shadows (pure): its status' shadowPercent while it is
    a canary (Progressing or Paused) without live weight, else 0 (shadowing stops the
    moment it leaves its shadow step, whatever a stale field says)."""
    if phase not in (Phase.PROGRESSING, Phase.PAUSED) or weight > 0 or not shadow_percent:
        return 0
    return max(0, min(100, shadow_percent))


def choose_by_weight(weights: Sequence[int], routing_key: str) -> int:
    """Index of the weighted option a routing key falls into (pure, sticky, uniform)."""
    bounds = list(itertools.accumulate(weights))
    if not bounds or bounds[-1] <= 0:
        raise ValueError("no option has a positive weight")
    digest = hashlib.sha256(routing_key.encode()).digest()
    point = int.from_bytes(digest[:8], "big") % bounds[-1]
    return bisect.bisect_right(bounds, point)


class PromptRegistry:
    """An immutable snapshot of the served versions."""

    def __init__(self, served: Sequence[LoadedVersion]) -> None:
        self._served = sorted(
            served, key=lambda s: (s.prompt, semver.Version.parse(s.version)), reverse=False
        )

    @classmethod
    def from_resources(
        cls, resources: Sequence[PromptVersion], collections: set[str] | None
    ) -> PromptRegistry:
        """Check, weigh and compile `resources` as a local (controller-less) registry."""
        problems = {
            r.metadata.name: reason
            for r in resources
            if (reason := check_servable(r, collections)) is not None
        }
        served: list[LoadedVersion] = []
        for resource, phase, weight, message in assign_local_weights(resources, problems):
            if phase is Phase.INVALID:
                served.append(InvalidVersion(resource, message))
                continue
            compiled = compile_prompt(resource.spec.template)
            served.append(ServedVersion(resource, compiled, phase, weight, message))
        return cls(served)

    @classmethod
    def from_status(
        cls,
        resources: Sequence[PromptVersion],
        collections: set[str] | None,
        compiled: dict[tuple[str, str], CompiledPrompt] | None = None,
    ) -> PromptRegistry:
        """Serve the phases and weights the controller wrote to each resource's status.

        `compiled` caches templates by (namespace/name, version) across rebuilds: specs
        are immutable, so a compiled template never goes stale.
        """
        cache = compiled if compiled is not None else {}
        served: list[LoadedVersion] = []
        for resource in resources:
            reason = check_servable(resource, collections)
            status = resource.status
            if reason is not None:
                served.append(InvalidVersion(resource, reason))
                continue
            key = (f"{resource.metadata.namespace}/{resource.metadata.name}", resource.spec.version)
            if key not in cache:
                cache[key] = compile_prompt(resource.spec.template)
            phase = (status.phase if status else None) or Phase.PENDING
            weight = (status.weight if status else None) or 0
            message = status.message if status else None
            shadow = decide_shadow_percent(phase, weight, status.shadow_percent if status else None)
            served.append(ServedVersion(resource, cache[key], phase, weight, message, shadow))
        return cls(served)

    @classmethod
    def with_routing(
        cls, registry: PromptRegistry, routing: Mapping[str, Mapping[str, int]]
    ) -> PromptRegistry:
        """`registry` with the weights of a local routing file ({prompt: {version: weight}})."""
        served: list[LoadedVersion] = []
        for item in registry.versions():
            weights = routing.get(item.prompt)
            if weights is None or isinstance(item, InvalidVersion):
                served.append(item)
                continue
            weight = int(weights.get(item.version, 0))
            message = "weight from the routing file"
            served.append(ServedVersion(item.resource, item.compiled, item.phase, weight, message))
        return cls(served)

    def versions(self) -> list[LoadedVersion]:
        """Every loaded version, by prompt then version."""
        return list(self._served)

    def shadow_of(self, prompt: str) -> ServedVersion | None:
        """The version `prompt` shadows now (its newest with a shadow share), if any."""
        shadows = [
            s
            for s in self._served
            if s.prompt == prompt and isinstance(s, ServedVersion) and s.shadow_percent > 0
        ]
        return shadows[-1] if shadows else None  # sorted by version: the newest is last

    def select(self, prompt: str, version: str | None, routing_key: str) -> ServedVersion:
        """The version that answers: the pinned one, else a weighted, sticky choice."""
        candidates = [s for s in self._served if s.prompt == prompt]
        if not candidates:
            raise PromptNotFoundError(f"no PromptVersion serves prompt {prompt!r}")
        if version is not None:
            pinned = next((s for s in candidates if s.version == version), None)
            if pinned is None:
                raise PromptNotFoundError(f"prompt {prompt!r} has no version {version!r}")
            if isinstance(pinned, InvalidVersion):
                raise PromptNotFoundError(
                    f"version {version} of {prompt!r} is Invalid: {pinned.message}"
                )
            return pinned
        live = [s for s in candidates if isinstance(s, ServedVersion) and s.weight > 0]
        if not live:
            raise PromptNotFoundError(f"prompt {prompt!r} has no servable version")
        return live[choose_by_weight([s.weight for s in live], routing_key)]
