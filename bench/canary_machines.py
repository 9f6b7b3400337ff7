"""The rollout state machine as the simulator drives it: the real one, or its fast replica.

:class:`Controller` runs the real :func:`controller.rollout.decide_analysis` and
:func:`controller.rollout.decide` on two version views and applies their status merge
patches as the API server would; :class:`Replica` does the same arithmetic (steps,
pauses, failureLimit) about 100x faster. Both are pure: time is passed in as `clock`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from api.v1alpha1 import Analysis, Phase, PromptVersionSpec, PromptVersionStatus, RolloutStep
from controller.analysis import Verdict
from controller.durations import parse_duration
from controller.rollout import Change, VersionView, decide, decide_analysis

__all__ = ["Controller", "Replica", "build_spec"]

_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build_spec(version: str, analysis: Analysis, steps: Sequence[RolloutStep]) -> PromptVersionSpec:
    """The spec of version `version` of the simulated prompt ``sim``."""
    return PromptVersionSpec.model_validate(
        {
            "prompt": "sim",
            "version": version,
            "owner": "bench",
            "template": {"system": "s", "user": "{{ question }}"},
            "model": {"name": "m"},
            "rollout": {
                "steps": [s.model_dump(by_alias=True) for s in steps],
                "analysis": analysis.model_dump(by_alias=True, exclude_none=True),
            },
        }
    )


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a status merge patch."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _apply(views: list[VersionView], changes: Sequence[Change]) -> list[VersionView]:
    by_name = {change.name: change for change in changes}
    result = []
    for view in views:
        change = by_name.get(view.name)
        if change is None:
            result.append(view)
            continue
        current = view.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        merged = _merge_patch(current, change.status.to_merge_patch())
        result.append(VersionView(view.name, view.spec, PromptVersionStatus.model_validate(merged)))
    return result


class Controller:
    """The real state machine: views, :func:`decide_analysis`, :func:`decide`, merge patches."""

    def __init__(self, analysis: Analysis, steps: Sequence[RolloutStep]) -> None:
        stable = VersionView(
            "sim-1-0-0",
            build_spec("1.0.0", analysis, steps),
            PromptVersionStatus(phase=Phase.STABLE, weight=100),
        )
        canary = VersionView(
            "sim-1-1-0", build_spec("1.1.0", analysis, steps), PromptVersionStatus()
        )
        self.views = _apply([stable, canary], decide([stable, canary], None, _T0))

    @property
    def weight(self) -> int:
        return self.views[1].status.weight or 0

    @property
    def phase(self) -> Phase:
        return self.views[1].phase

    def due(self, clock: float) -> bool:
        return decide_analysis(self.views, _T0 + timedelta(seconds=clock)) is not None

    def tick(self, clock: float, verdict: Verdict | None, assessment: Any) -> None:
        now = _T0 + timedelta(seconds=clock)
        self.views = _apply(self.views, decide(self.views, assessment, now))


class Replica:
    """The state machine's arithmetic alone (steps, pauses, failureLimit), ~100x faster.

    It is what :func:`controller.rollout.decide` does for a Progressing canary whose
    analyses are never Error and that nobody pauses; ``tests/controller`` checks that both
    give the same outcomes for the same traffic.
    """

    def __init__(self, analysis: Analysis, steps: Sequence[RolloutStep]) -> None:
        self.steps = list(steps)
        self.interval = parse_duration(analysis.interval)
        self.limit = analysis.failure_limit
        self.index = 0
        self.started = 0.0
        self.last = 0.0
        self.failures = 0
        self.phase = Phase.PROGRESSING

    @property
    def weight(self) -> int:
        if self.phase is Phase.ROLLED_BACK:
            return 0
        return 100 if self.phase is Phase.PROMOTED else self.steps[self.index].live_weight

    def due(self, clock: float) -> bool:
        return clock - max(self.last, self.started) >= self.interval

    def tick(self, clock: float, verdict: Verdict | None, assessment: Any) -> None:
        if verdict is None:
            return
        self.last = clock
        if verdict is Verdict.FAILED:
            self.failures += 1
            if self.failures >= self.limit:
                self.phase = Phase.ROLLED_BACK
        elif verdict is Verdict.SUCCESSFUL:
            self.failures = 0
            pause = self.steps[self.index].pause
            if pause != "manual" and clock - self.started >= parse_duration(pause or "0s"):
                self.index += 1
                self.started = clock
                if self.index >= len(self.steps):
                    self.phase = Phase.PROMOTED
