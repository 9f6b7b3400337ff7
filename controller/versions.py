"""The versions of one prompt as the controller sees them, and which of them matter (pure).

A :class:`VersionView` is one readable PromptVersion; an :class:`UnreadableVersion` is
one whose spec could not be read (it can only be marked Invalid). :func:`decide_analysis`
picks the canary whose analysis is due and the stable version it is compared with, so
the kopf layer only measures what it is told to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import semver

from api.v1alpha1 import Phase, PromptVersionSpec, PromptVersionStatus
from api.v1alpha1.requests import REQUEST_ANNOTATION, Action
from controller.conditions import Condition, parse_time
from controller.durations import parse_duration
from controller.status import CANARY_PHASES, STABLE_PHASES

__all__ = [
    "REQUEST_ANNOTATION",
    "Action",
    "AnalysisTarget",
    "ManualRequest",
    "UnreadableVersion",
    "VersionView",
    "analysis_due",
    "canary_of",
    "decide_analysis",
    "parse_request",
    "stable_of",
]


@dataclass(frozen=True)
class ManualRequest:
    """A parsed request annotation; `raw` identifies it so it is acted on once."""

    action: Action
    raw: str


def parse_request(value: str | None) -> ManualRequest | None:
    """`"promote@2026-11-25T12:00:00Z"` → ManualRequest; None for absent or unknown actions."""
    if not value:
        return None
    action = value.split("@", 1)[0].strip()
    try:
        return ManualRequest(Action(action), value)
    except ValueError:
        return None


@dataclass(frozen=True)
class VersionView:
    """One PromptVersion as the controller sees it."""

    name: str
    spec: PromptVersionSpec
    status: PromptVersionStatus
    #: Why the service could not serve it (template, variables, collection), if anything.
    invalid_reason: str | None = None
    request: ManualRequest | None = None

    @property
    def semver(self) -> semver.Version:
        """The parsed version."""
        return semver.Version.parse(self.spec.version)

    @property
    def phase(self) -> Phase:
        """The phase, Pending when none was written yet."""
        return self.status.phase or Phase.PENDING

    @property
    def pending_request(self) -> ManualRequest | None:
        """The request annotation, unless it was already handled."""
        if self.request is None or self.request.raw == self.status.handled_request:
            return None
        return self.request


@dataclass(frozen=True)
class UnreadableVersion:
    """A PromptVersion whose spec could not be read; what its status says, as far as readable."""

    name: str
    reason: str
    phase: Phase | None = None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class AnalysisTarget:
    """The canary to measure now, and the stable version it is compared with (if any)."""

    canary: VersionView
    stable: VersionView | None


def canary_of(views: Sequence[VersionView]) -> VersionView | None:
    """The version currently being rolled out, if any (the newest, should there be two)."""
    canaries = [v for v in views if v.phase in CANARY_PHASES]
    return max(canaries, key=lambda v: v.semver, default=None)


def stable_of(views: Sequence[VersionView]) -> VersionView | None:
    """The version serving the rest of the traffic, if any (the newest, should there be two)."""
    stables = [v for v in views if v.phase in STABLE_PHASES]
    return max(stables, key=lambda v: v.semver, default=None)


def analysis_due(view: VersionView, now: datetime) -> bool:
    """Whether the canary's next analysis is due (its interval since the last one)."""
    if view.phase is not Phase.PROGRESSING:
        return False
    last = parse_time((view.status.last_analysis or {}).get("time"))
    started = parse_time(view.status.step_started_at)
    reference = max((t for t in (last, started) if t is not None), default=None)
    if reference is None:
        return True
    interval = parse_duration(view.spec.rollout.analysis.interval)
    return (now - reference).total_seconds() >= interval


def decide_analysis(views: Sequence[VersionView], now: datetime) -> AnalysisTarget | None:
    """What to measure this tick: the canary whose analysis is due, and its baseline."""
    canary = canary_of(views)
    if canary is None or not analysis_due(canary, now):
        return None
    return AnalysisTarget(canary, stable_of(views))
