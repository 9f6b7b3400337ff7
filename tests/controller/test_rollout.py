"""The rollout state machine, driven decision by decision with an explicit clock.

A :class:`Sim` holds every PromptVersion of one prompt. Each decision's changes are
applied to it as the RFC 7386 merge patches they are, and after every decision the
invariants are checked: at most one stable and one canary, the served weights sum
to 100 (the stable takes 100 minus the canary), everything else is at 0, every phase
change has its Event, condition times move only on flips, and deciding again at
once changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.v1alpha1 import (
    Analysis,
    Condition,
    Phase,
    PromptVersionSpec,
    PromptVersionStatus,
    Rollout,
    RolloutStep,
)
from controller.analysis import Measurement, Verdict, VersionSample, assess, build_queries
from controller.conditions import read_conditions
from controller.durations import parse_duration
from controller.rollout import (
    REQUEST_ANNOTATION,
    STABLE_PHASES,
    Action,
    Change,
    ManualRequest,
    UnreadableVersion,
    VersionView,
    analysis_due,
    canary_of,
    decide,
    decide_analysis,
    format_time,
    parse_request,
    stable_of,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CANARY_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED})
SPEC_FILE = Path(__file__).resolve().parents[2] / "prompts" / "policy-qa-1.1.0.yaml"
BASE = PromptVersionSpec.model_validate(yaml.safe_load(SPEC_FILE.read_text())["spec"])
#: 10 % for 5m, then 50 % for 5m; analyses every 10s; failureLimit 2, errorLimit 3.
STEPS = BASE.rollout.steps
#: The live weight of each step.
WEIGHTS = [step.live_weight for step in STEPS]
INTERVAL = parse_duration(BASE.rollout.analysis.interval)


def at(seconds: float) -> str:
    return format_time(T0 + timedelta(seconds=seconds))


# --- building versions ------------------------------------------------------------------------


def make_spec(
    version: str, *, steps: Sequence[RolloutStep] | None = None, **analysis: Any
) -> PromptVersionSpec:
    """policy-qa-1.1.0 as `version`, with other steps or analysis settings if given."""
    rollout = BASE.rollout
    if steps is not None:
        rollout = rollout.model_copy(update={"steps": list(steps)})
    if analysis:
        rollout = rollout.model_copy(
            update={"analysis": rollout.analysis.model_copy(update=analysis)}
        )
    return BASE.model_copy(update={"version": version, "rollout": rollout})


def name_of(version: str) -> str:
    return "policy-qa-" + version.replace(".", "-")


def pv(
    version: str,
    phase: Phase | None = None,
    weight: int | None = None,
    *,
    spec: PromptVersionSpec | None = None,
    invalid: str | None = None,
    request: str | None = None,
    **status: Any,
) -> VersionView:
    """One PromptVersion; `status` takes PromptVersionStatus' snake_case fields."""
    return VersionView(
        name=name_of(version),
        spec=spec or make_spec(version),
        status=PromptVersionStatus(phase=phase, weight=weight, **status),
        invalid_reason=invalid,
        request=parse_request(request),
    )


def canary_at(
    version: str,
    phase: Phase,
    step: int,
    *,
    request: str | None = None,
    invalid: str | None = None,
    **status: Any,
) -> VersionView:
    """A canary of the default steps at `step` (its weight), its step started at T0."""
    weight = STEPS[step].weight if phase in CANARY_PHASES else 0
    return pv(
        version,
        phase,
        weight,
        step_index=step,
        step_started_at=at(0),
        request=request,
        invalid=invalid,
        **status,
    )


# --- applying changes -------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: what the API server does with a status merge patch."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply(views: Sequence[VersionView], changes: Sequence[Change]) -> list[VersionView]:
    """`views` with each change's status merged in."""
    by_name = {change.name: change for change in changes}
    assert len(by_name) == len(changes), "one change per object"
    assert set(by_name) <= {view.name for view in views}, "changes name known objects"
    result = []
    for view in views:
        change = by_name.get(view.name)
        if change is None:
            result.append(view)
            continue
        current = view.status.model_dump(mode="json", by_alias=True, exclude_none=True)
        patch = change.status.to_merge_patch()
        status = PromptVersionStatus.model_validate(merge_patch(current, patch))
        result.append(dataclasses.replace(view, status=status))
    return result


def check_invariants(
    before: Sequence[VersionView],
    after: Sequence[VersionView],
    changes: Sequence[Change],
    now: datetime,
) -> None:
    stables = [v for v in after if v.phase in STABLE_PHASES]
    canaries = [v for v in after if v.phase in CANARY_PHASES]
    assert len(stables) <= 1, f"two stables: {[v.name for v in stables]}"
    assert len(canaries) <= 1, f"two canaries: {[v.name for v in canaries]}"
    served = stables + canaries
    if served:
        weights = {v.name: v.status.weight for v in served}
        assert sum(w or 0 for w in weights.values()) == 100, f"served weights {weights}"
    for view in after:
        assert view.phase is not Phase.PENDING, f"{view.name} left Pending"
        if view not in served:
            assert view.status.weight == 0, f"{view.name} {view.phase} at {view.status.weight}"
    events = {c.name: [reason for _, reason, _ in c.events] for c in changes}
    old = {v.name: v for v in before}
    for view in after:
        if view.phase is not old[view.name].phase:
            assert view.phase.value in events.get(view.name, []), f"no Event for {view.name}"
        previous = {c.type: c for c in old[view.name].status.conditions}
        for condition in view.status.conditions:
            was = previous.get(condition.type)
            if was is not None and was.status == condition.status:
                assert condition.last_transition_time == was.last_transition_time
            else:
                assert condition.last_transition_time == format_time(now)


HEALTHY = Measurement(
    canary=VersionSample(requests=200, errors=1, p95_ms=900),
    stable=VersionSample(requests=2000, errors=10, p95_ms=850),
    queries={
        f"canary.{key}": query for key, query in build_queries("policy-qa", "x", "1m").items()
    },
)
FAILING = Measurement(canary=VersionSample(requests=200, errors=40, p95_ms=900))
#: Too little traffic: inconclusive, however bad it looks.
QUIET = Measurement(canary=VersionSample(requests=5, errors=5, p95_ms=60_000))
DOWN = Measurement(error="connection refused")
BY_LETTER = {"S": HEALTHY, "F": FAILING, "I": QUIET, "E": DOWN}


@dataclasses.dataclass
class Sim:
    """The PromptVersions of one prompt, an explicit clock and every Event so far."""

    views: list[VersionView]
    now: datetime = T0
    #: (seconds since T0, version, type, reason, message)
    log: list[tuple[float, str, str, str, str]] = dataclasses.field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return (self.now - T0).total_seconds()

    def __getitem__(self, version: str) -> VersionView:
        return next(v for v in self.views if v.spec.version == version)

    def state(self) -> dict[str, tuple[Phase, int | None]]:
        return {v.spec.version: (v.phase, v.status.weight) for v in self.views}

    def reasons(self, version: str) -> list[str]:
        return [reason for _, v, _, reason, _ in self.log if v == version]

    def when(self, version: str, reason: str) -> float:
        return next(t for t, v, _, r, _ in self.log if v == version and r == reason)

    def decide(self, assessment: Any = None) -> list[Change]:
        before = self.views
        changes = decide(before, assessment, self.now)
        self.views = apply(before, changes)
        names = {v.name: v.spec.version for v in before}
        for change in changes:
            for kind, reason, message in change.events:
                self.log.append((self.elapsed, names[change.name], kind, reason, message))
        check_invariants(before, self.views, changes, self.now)
        assert decide(self.views, None, self.now) == [], "deciding again changes nothing"
        return changes

    def add(self, view: VersionView) -> None:
        self.views.append(view)

    def delete(self, version: str) -> None:
        self.views.remove(self[version])

    def request(self, version: str, value: str) -> None:
        """What `promptctl <action>` does: set the request annotation."""
        view = self[version]
        index = self.views.index(view)
        self.views[index] = dataclasses.replace(view, request=parse_request(value))

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def analyse(self, measurement: Measurement) -> list[Change]:
        """One interval later, the canary's analysis (which must be due) and a decision."""
        canary = canary_of(self.views)
        assert canary is not None
        self.tick(parse_duration(canary.spec.rollout.analysis.interval))
        assert analysis_due(canary, self.now)
        return self.decide(assess(canary.spec.rollout.analysis, measurement))

    def run(self, measurement: Measurement, until: float, tick: float = 1.0) -> None:
        """The controller loop: every `tick`, analyse the canary when due, then decide."""
        while self.elapsed + tick <= until:
            self.tick(tick)
            canary = canary_of(self.views)
            due = canary is not None and analysis_due(canary, self.now)
            analysis = canary.spec.rollout.analysis if canary is not None else None
            self.decide(assess(analysis, measurement) if due and analysis else None)


def rolling_out(**analysis: Any) -> Sim:
    """1.0.0 stable, 1.1.0 (with `analysis` settings) just started at T0."""
    sim = Sim([pv("1.0.0", Phase.STABLE, 100), pv("1.1.0", spec=make_spec("1.1.0", **analysis))])
    sim.decide()
    assert sim.state() == {"1.0.0": (Phase.STABLE, 90), "1.1.0": (Phase.PROGRESSING, 10)}
    return sim


# --- one decision over a set of versions ------------------------------------------------------

P = Phase
ADMISSION = [
    # (id, versions, expected {version: (phase, weight)}, expected Event reasons per version)
    ("first-version", [pv("1.0.0")], {"1.0.0": (P.STABLE, 100)}, {"1.0.0": ["Stable"]}),
    (
        "two-pending-at-once",
        [pv("1.0.0"), pv("1.1.0")],
        {"1.0.0": (P.SUPERSEDED, 0), "1.1.0": (P.STABLE, 100)},
        {"1.0.0": ["Superseded"], "1.1.0": ["Stable"]},
    ),
    (
        "new-version-over-stable",
        [pv("1.0.0", P.STABLE, 100), pv("1.1.0")],
        {"1.0.0": (P.STABLE, 100 - WEIGHTS[0]), "1.1.0": (P.PROGRESSING, WEIGHTS[0])},
        {"1.1.0": ["Progressing"]},
    ),
    (
        "older-pending-version",
        [pv("1.1.0", P.STABLE, 100), pv("1.0.0")],
        {"1.0.0": (P.SUPERSEDED, 0), "1.1.0": (P.STABLE, 100)},
        {"1.0.0": ["Superseded"]},
    ),
    (
        "pending-between-stable-and-canary",
        [pv("1.0.0", P.STABLE, 90), canary_at("1.2.0", P.PROGRESSING, 0), pv("1.1.0")],
        {"1.0.0": (P.STABLE, 90), "1.1.0": (P.SUPERSEDED, 0), "1.2.0": (P.PROGRESSING, 10)},
        {"1.1.0": ["Superseded"]},
    ),
    (
        "newer-version-supersedes-the-canary",
        [pv("1.0.0", P.STABLE, 50), canary_at("1.1.0", P.PROGRESSING, 1), pv("1.2.0")],
        {"1.0.0": (P.STABLE, 90), "1.1.0": (P.SUPERSEDED, 0), "1.2.0": (P.PROGRESSING, 10)},
        {"1.1.0": ["Superseded"], "1.2.0": ["Progressing"]},
    ),
    (
        "newer-version-supersedes-a-paused-canary",
        [pv("1.0.0", P.STABLE, 50), canary_at("1.1.0", P.PAUSED, 1), pv("1.2.0")],
        {"1.0.0": (P.STABLE, 90), "1.1.0": (P.SUPERSEDED, 0), "1.2.0": (P.PROGRESSING, 10)},
        {"1.1.0": ["Superseded"], "1.2.0": ["Progressing"]},
    ),
    (
        "two-newer-versions-during-a-canary",
        [pv("1.0.0", P.STABLE, 90), canary_at("1.1.0", P.PROGRESSING, 0), pv("1.3.0"), pv("1.2.0")],
        {
            "1.0.0": (P.STABLE, 90),
            "1.1.0": (P.SUPERSEDED, 0),
            "1.2.0": (P.SUPERSEDED, 0),
            "1.3.0": (P.PROGRESSING, 10),
        },
        {"1.1.0": ["Superseded"], "1.2.0": ["Superseded"], "1.3.0": ["Progressing"]},
    ),
    (
        "new-version-after-a-rollback",
        [pv("1.0.0", P.STABLE, 100), canary_at("1.1.0", P.ROLLED_BACK, 1), pv("1.2.0")],
        {"1.0.0": (P.STABLE, 90), "1.1.0": (P.ROLLED_BACK, 0), "1.2.0": (P.PROGRESSING, 10)},
        {"1.2.0": ["Progressing"]},
    ),
    (
        "zero-steps-promoted-at-once",
        [pv("1.0.0", P.STABLE, 100), pv("1.1.0", spec=make_spec("1.1.0", steps=[]))],
        {"1.0.0": (P.SUPERSEDED, 0), "1.1.0": (P.PROMOTED, 100)},
        {"1.0.0": ["Superseded"], "1.1.0": ["Promoted"]},
    ),
    (
        "zero-steps-during-a-canary",
        [
            pv("1.0.0", P.STABLE, 90),
            canary_at("1.1.0", P.PROGRESSING, 0),
            pv("1.2.0", spec=make_spec("1.2.0", steps=[])),
        ],
        {"1.0.0": (P.SUPERSEDED, 0), "1.1.0": (P.SUPERSEDED, 0), "1.2.0": (P.PROMOTED, 100)},
        {"1.0.0": ["Superseded"], "1.1.0": ["Superseded"], "1.2.0": ["Promoted"]},
    ),
    (
        "invalid-only-version-routes-nothing",
        [pv("1.0.0", invalid="template: 'foo' is undefined")],
        {"1.0.0": (P.INVALID, 0)},
        {"1.0.0": ["Invalid"]},
    ),
    (
        "invalid-new-version-leaves-the-stable",
        [pv("1.0.0", P.STABLE, 100), pv("1.1.0", invalid="collection 'x' does not exist")],
        {"1.0.0": (P.STABLE, 100), "1.1.0": (P.INVALID, 0)},
        {"1.1.0": ["Invalid"]},
    ),
    (
        "invalid-newest-pending-the-older-becomes-stable",
        [pv("1.0.0"), pv("1.1.0", invalid="bad")],
        {"1.0.0": (P.STABLE, 100), "1.1.0": (P.INVALID, 0)},
        {"1.0.0": ["Stable"], "1.1.0": ["Invalid"]},
    ),
    (
        "canary-turns-invalid-stable-back-to-100",
        [pv("1.0.0", P.STABLE, 90), canary_at("1.1.0", P.PROGRESSING, 0, invalid="bad")],
        {"1.0.0": (P.STABLE, 100), "1.1.0": (P.INVALID, 0)},
        {"1.1.0": ["Invalid"]},
    ),
    (
        "stable-deleted-canary-promoted",
        [canary_at("1.1.0", P.PROGRESSING, 0)],
        {"1.1.0": (P.PROMOTED, 100)},
        {"1.1.0": ["Promoted"]},
    ),
    (
        "stable-deleted-paused-canary-promoted",
        [canary_at("1.1.0", P.PAUSED, 1)],
        {"1.1.0": (P.PROMOTED, 100)},
        {"1.1.0": ["Promoted"]},
    ),
    (
        "stable-invalid-canary-promoted",
        [pv("1.0.0", P.STABLE, 90, invalid="bad"), canary_at("1.1.0", P.PROGRESSING, 0)],
        {"1.0.0": (P.INVALID, 0), "1.1.0": (P.PROMOTED, 100)},
        {"1.0.0": ["Invalid"], "1.1.0": ["Promoted"]},
    ),
    (
        "steady-state-changes-nothing",
        [pv("1.0.0", P.SUPERSEDED, 0), pv("1.1.0", P.STABLE, 100), pv("0.9.0", P.INVALID, 0)],
        {"0.9.0": (P.INVALID, 0), "1.0.0": (P.SUPERSEDED, 0), "1.1.0": (P.STABLE, 100)},
        {},
    ),
]


@pytest.mark.parametrize(
    ("views", "expected", "events"), [c[1:] for c in ADMISSION], ids=[c[0] for c in ADMISSION]
)
def test_one_decision(
    views: list[VersionView],
    expected: dict[str, tuple[Phase, int]],
    events: dict[str, list[str]],
) -> None:
    sim = Sim(list(views))
    sim.decide()
    assert sim.state() == expected
    assert {v: sim.reasons(v) for v in expected if sim.reasons(v)} == events


def test_a_second_copy_of_the_stable_version_is_superseded() -> None:
    copy = dataclasses.replace(pv("1.1.0"), name="policy-qa-copy")
    sim = Sim([pv("1.1.0", Phase.STABLE, 100), copy])
    sim.decide()
    assert sim.views[1].phase is Phase.SUPERSEDED
    assert sim.views[0].phase is Phase.STABLE


def test_new_version_starts_at_the_first_step() -> None:
    sim = rolling_out()
    canary = sim["1.1.0"]
    assert canary.status.step_index == 0
    assert canary.status.step_started_at == at(0)
    assert (canary.status.consecutive_failures, canary.status.consecutive_errors) == (0, 0)
    assert canary.status.message == "rolling out over 1.0.0: step 1"
    assert {c.type: c.status for c in canary.status.conditions} == {
        "Degraded": "False",
        "Progressing": "True",
        "Promoted": "False",
    }
    assert sim.log == [(0.0, "1.1.0", "Normal", "Progressing", "rolling out over 1.0.0: step 1")]


def test_invalid_version_carries_its_reason() -> None:
    sim = Sim([pv("1.0.0", invalid="templates use undeclared variables: tone")])
    sim.decide()
    view = sim["1.0.0"]
    assert view.status.message == "templates use undeclared variables: tone"
    assert {c.type: c.status for c in view.status.conditions}["Degraded"] == "True"
    assert sim.log == [
        (0.0, "1.0.0", "Warning", "Invalid", "templates use undeclared variables: tone")
    ]


# --- a healthy rollout ------------------------------------------------------------------------


def test_healthy_analyses_advance_only_after_each_pause() -> None:
    sim = rolling_out()
    first, second = (parse_duration(step.pause or "0s") for step in STEPS)
    sim.run(HEALTHY, until=first - 1)
    assert sim.state() == {"1.0.0": (Phase.STABLE, 90), "1.1.0": (Phase.PROGRESSING, 10)}
    assert sim["1.1.0"].status.step_index == 0
    sim.run(HEALTHY, until=first)
    assert sim.state() == {"1.0.0": (Phase.STABLE, 50), "1.1.0": (Phase.PROGRESSING, 50)}
    assert sim["1.1.0"].status.step_index == 1
    assert sim["1.1.0"].status.step_started_at == at(first)
    sim.run(HEALTHY, until=first + second - 1)
    assert sim["1.1.0"].status.step_index == 1
    sim.run(HEALTHY, until=first + second)
    assert sim.state() == {"1.0.0": (Phase.SUPERSEDED, 0), "1.1.0": (Phase.PROMOTED, 100)}
    assert sim["1.1.0"].status.step_index == len(STEPS)
    assert sim.when("1.1.0", "StepAdvanced") == first
    assert sim.when("1.1.0", "Promoted") == first + second
    assert sim.when("1.0.0", "Superseded") == first + second
    # promoted: no more analyses, nothing changes
    sim.run(HEALTHY, until=first + second + 600)
    assert sim.when("1.1.0", "Promoted") == sim.log[-1][0]


def test_conditions_across_a_rollout() -> None:
    sim = rolling_out()
    pause = parse_duration(STEPS[0].pause or "0s")
    sim.run(HEALTHY, until=pause)  # step 2: still Progressing, its time unchanged
    conditions = {c.type: c for c in sim["1.1.0"].status.conditions}
    assert conditions["Progressing"].status == "True"
    assert conditions["Progressing"].last_transition_time == at(0)
    assert conditions["Progressing"].message == "analysis passed: step 2"
    sim.run(HEALTHY, until=2 * pause)
    canary = {c.type: (c.status, c.last_transition_time) for c in sim["1.1.0"].status.conditions}
    assert canary == {
        "Degraded": ("False", at(0)),
        "Progressing": ("False", at(2 * pause)),
        "Promoted": ("True", at(2 * pause)),
    }
    old = {c.type: c.status for c in sim["1.0.0"].status.conditions}
    assert old == {"Degraded": "False", "Progressing": "False", "Promoted": "False"}


def test_last_analysis_is_written() -> None:
    sim = rolling_out()
    sim.analyse(HEALTHY)
    last = sim["1.1.0"].status.last_analysis
    assert last is not None
    assert last["time"] == at(INTERVAL)
    assert last["verdict"] == "Successful"
    assert last["values"]["canary"] == {"requests": 200, "errorRate": 0.005, "p95LatencyMs": 900}
    assert last["queries"] == dict(HEALTHY.queries)


def test_last_analysis_keeps_nothing_of_the_previous_one() -> None:
    # Status changes are merge patches: a key the new lastAnalysis lacks must be deleted.
    sim = rolling_out()
    sim.analyse(HEALTHY)
    sim.analyse(DOWN)
    last = sim["1.1.0"].status.last_analysis
    assert last is not None
    assert last["verdict"] == "Error"
    assert last["values"] == {}, "no values measured, none shown"
    assert last["queries"] == {}
    sim.analyse(HEALTHY)
    last = sim["1.1.0"].status.last_analysis
    assert last is not None
    assert last["verdict"] == "Successful"
    assert "error" not in last


# --- failed, inconclusive and erroneous analyses ----------------------------------------------


@pytest.mark.parametrize("limit", [1, 2, 3], ids=["limit-1", "limit-2", "limit-3"])
def test_exactly_failure_limit_failures_roll_back(limit: int) -> None:
    sim = rolling_out(failure_limit=limit)
    for count in range(1, limit):
        sim.analyse(FAILING)
        assert sim.state() == {"1.0.0": (Phase.STABLE, 90), "1.1.0": (Phase.PROGRESSING, 10)}
        assert sim["1.1.0"].status.consecutive_failures == count
    sim.analyse(FAILING)
    assert sim.state() == {"1.0.0": (Phase.STABLE, 100), "1.1.0": (Phase.ROLLED_BACK, 0)}
    assert sim.reasons("1.1.0") == ["Progressing"] + ["AnalysisFailed"] * limit + ["RolledBack"]
    kind, message = next((k, m) for _, _, k, r, m in sim.log if r == "RolledBack")
    assert kind == "Warning"
    assert message.startswith("rolled back: error rate 0.2000 > maxErrorRate")
    conditions = {c.type: c.status for c in sim["1.1.0"].status.conditions}
    assert conditions == {"Degraded": "True", "Progressing": "False", "Promoted": "False"}
    # rolled back: no more analyses, nothing more happens
    sim.run(FAILING, until=sim.elapsed + 600)
    assert sim.state()["1.1.0"] == (Phase.ROLLED_BACK, 0)


@pytest.mark.parametrize("limit", [1, 2, 3], ids=["limit-1", "limit-2", "limit-3"])
def test_prometheus_errors_hold_the_weight_then_roll_back(limit: int) -> None:
    sim = rolling_out(error_limit=limit)
    for count in range(1, limit):
        sim.analyse(DOWN)
        assert sim.state() == {"1.0.0": (Phase.STABLE, 90), "1.1.0": (Phase.PROGRESSING, 10)}
        assert sim["1.1.0"].status.consecutive_errors == count
    sim.analyse(DOWN)
    assert sim.state() == {"1.0.0": (Phase.STABLE, 100), "1.1.0": (Phase.ROLLED_BACK, 0)}
    assert sim.reasons("1.1.0") == ["Progressing"] + ["AnalysisError"] * limit + ["RolledBack"]


SEQUENCES = [
    # (id, verdicts: S successful, F failed, I inconclusive, E error; phase; failures; errors)
    ("success-resets-failures", "FSF", Phase.PROGRESSING, 1, 0),
    ("two-failures-after-a-success", "FSFF", Phase.ROLLED_BACK, 2, 0),
    ("inconclusive-keeps-the-failure-count", "FIF", Phase.ROLLED_BACK, 2, 0),
    ("error-keeps-the-failure-count", "FEF", Phase.ROLLED_BACK, 2, 0),
    ("errors-below-the-limit", "EE", Phase.PROGRESSING, 0, 2),
    ("success-resets-errors", "EESEE", Phase.PROGRESSING, 0, 2),
    ("inconclusive-resets-errors", "EEIEE", Phase.PROGRESSING, 0, 2),
    ("failure-resets-errors", "EEFEE", Phase.PROGRESSING, 1, 2),
    ("errors-after-a-failure", "FEEE", Phase.ROLLED_BACK, 1, 3),
    ("inconclusive-forever", "I" * 60, Phase.PROGRESSING, 0, 0),
    ("inconclusive-then-failures", "I" * 10 + "FF", Phase.ROLLED_BACK, 2, 0),
]


@pytest.mark.parametrize(
    ("verdicts", "phase", "failures", "errors"),
    [c[1:] for c in SEQUENCES],
    ids=[c[0] for c in SEQUENCES],
)
def test_analysis_sequences(verdicts: str, phase: Phase, failures: int, errors: int) -> None:
    sim = rolling_out(failure_limit=2, error_limit=3)
    assert len(verdicts) * INTERVAL < parse_duration(STEPS[0].pause or "0s") or "S" not in verdicts
    for letter in verdicts:
        sim.analyse(BY_LETTER[letter])
        if sim["1.1.0"].phase is Phase.PROGRESSING:
            assert sim.state()["1.1.0"] == (Phase.PROGRESSING, WEIGHTS[0]), "weight held"
    canary = sim["1.1.0"]
    assert canary.phase is phase
    assert (canary.status.consecutive_failures, canary.status.consecutive_errors) == (
        failures,
        errors,
    )


def test_inconclusive_never_advances_nor_rolls_back() -> None:
    sim = rolling_out()
    sim.run(QUIET, until=3600)
    assert sim.state() == {"1.0.0": (Phase.STABLE, 90), "1.1.0": (Phase.PROGRESSING, 10)}
    assert sim["1.1.0"].status.step_index == 0
    assert sim.reasons("1.1.0") == ["Progressing"]
    last = sim["1.1.0"].status.last_analysis
    assert last is not None
    assert last["verdict"] == Verdict.INCONCLUSIVE.value
    assert last["time"] == at(3600)


BAD_FROM = [("bad-from-the-start", 0.0), ("bad-from-mid-step", 45.0)]


@pytest.mark.parametrize("bad_from", [c[1] for c in BAD_FROM], ids=[c[0] for c in BAD_FROM])
def test_rollback_within_failure_limit_intervals_at_defaults(bad_from: float) -> None:
    defaults = Analysis()
    interval = parse_duration(defaults.interval)
    spec = BASE.model_copy(update={"version": "1.1.0", "rollout": Rollout()})
    sim = Sim([pv("1.0.0", Phase.STABLE, 100), pv("1.1.0", spec=spec)])
    sim.decide()
    sim.run(HEALTHY, until=bad_from)
    sim.run(FAILING, until=bad_from + 10 * defaults.failure_limit * interval)
    first_failed = sim.when("1.1.0", "AnalysisFailed")
    rolled_back = sim.when("1.1.0", "RolledBack")
    assert rolled_back - first_failed <= defaults.failure_limit * interval
    # the first failing analysis comes at most one interval after the canary turned bad
    assert rolled_back - bad_from <= (defaults.failure_limit + 1) * interval
    assert sim.state() == {"1.0.0": (Phase.STABLE, 100), "1.1.0": (Phase.ROLLED_BACK, 0)}


# --- manual requests --------------------------------------------------------------------------

LAST = len(STEPS) - 1
REQUESTS = [
    # (id, canary phase, step, request, canary after (phase, weight, step), stable after, events)
    (
        "promote-advances-one-step",
        P.PROGRESSING, 0, "promote",
        (P.PROGRESSING, WEIGHTS[1], 1), (P.STABLE, 100 - WEIGHTS[1]), ["StepAdvanced"],
    ),
    (
        "promote-on-the-last-step-promotes",
        P.PROGRESSING, LAST, "promote",
        (P.PROMOTED, 100, len(STEPS)), (P.SUPERSEDED, 0), ["Promoted"],
    ),
    (
        "promote-while-paused-advances",
        P.PAUSED, 0, "promote",
        (P.PROGRESSING, WEIGHTS[1], 1), (P.STABLE, 100 - WEIGHTS[1]),
        ["Progressing", "StepAdvanced"],
    ),
    (
        "promote-full",
        P.PROGRESSING, 0, "promote-full",
        (P.PROMOTED, 100, len(STEPS)), (P.SUPERSEDED, 0), ["Promoted"],
    ),
    (
        "promote-full-while-paused",
        P.PAUSED, 0, "promote-full",
        (P.PROMOTED, 100, len(STEPS)), (P.SUPERSEDED, 0), ["Promoted"],
    ),
    (
        "abort",
        P.PROGRESSING, 1, "abort",
        (P.ABORTED, 0, 1), (P.STABLE, 100), ["Aborted"],
    ),
    (
        "abort-while-paused",
        P.PAUSED, 0, "abort",
        (P.ABORTED, 0, 0), (P.STABLE, 100), ["Aborted"],
    ),
    (
        "pause-holds-the-weight",
        P.PROGRESSING, 1, "pause",
        (P.PAUSED, WEIGHTS[1], 1), (P.STABLE, 100 - WEIGHTS[1]), ["Paused"],
    ),
    (
        "resume",
        P.PAUSED, 1, "resume",
        (P.PROGRESSING, WEIGHTS[1], 1), (P.STABLE, 100 - WEIGHTS[1]), ["Progressing"],
    ),
    (
        "retry-rolled-back-restarts-at-step-1",
        P.ROLLED_BACK, 1, "retry",
        (P.PROGRESSING, WEIGHTS[0], 0), (P.STABLE, 100 - WEIGHTS[0]), ["Progressing"],
    ),
    (
        "retry-aborted-restarts-at-step-1",
        P.ABORTED, 1, "retry",
        (P.PROGRESSING, WEIGHTS[0], 0), (P.STABLE, 100 - WEIGHTS[0]), ["Progressing"],
    ),
    (
        "pause-while-paused-is-ignored",
        P.PAUSED, 0, "pause",
        (P.PAUSED, WEIGHTS[0], 0), (P.STABLE, 100 - WEIGHTS[0]), ["RequestIgnored"],
    ),
    (
        "resume-while-progressing-is-ignored",
        P.PROGRESSING, 0, "resume",
        (P.PROGRESSING, WEIGHTS[0], 0), (P.STABLE, 100 - WEIGHTS[0]),
        ["RequestIgnored"],
    ),
    (
        "retry-while-progressing-is-ignored",
        P.PROGRESSING, 0, "retry",
        (P.PROGRESSING, WEIGHTS[0], 0), (P.STABLE, 100 - WEIGHTS[0]),
        ["RequestIgnored"],
    ),
    (
        "promote-rolled-back-is-ignored",
        P.ROLLED_BACK, 1, "promote",
        (P.ROLLED_BACK, 0, 1), (P.STABLE, 100), ["RequestIgnored"],
    ),
    (
        "abort-aborted-is-ignored",
        P.ABORTED, 1, "abort",
        (P.ABORTED, 0, 1), (P.STABLE, 100), ["RequestIgnored"],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("phase", "step", "action", "canary", "stable", "events"),
    [c[1:] for c in REQUESTS],
    ids=[c[0] for c in REQUESTS],
)
def test_manual_request(
    phase: Phase,
    step: int,
    action: str,
    canary: tuple[Phase, int, int],
    stable: tuple[Phase, int],
    events: list[str],
) -> None:
    request = f"{action}@2026-11-25T12:01:00Z"
    before = canary_at("1.1.0", phase, step, request=request, consecutive_failures=1)
    old_weight = 100 - (before.status.weight or 0)
    sim = Sim([pv("1.0.0", Phase.STABLE, old_weight), before])
    sim.tick(60)
    sim.decide()
    after = sim["1.1.0"]
    assert (after.phase, after.status.weight, after.status.step_index) == canary
    assert sim.state()["1.0.0"] == stable
    assert sim.reasons("1.1.0") == events
    assert after.status.handled_request == request
    if action in ("retry", "resume") and "RequestIgnored" not in events:
        assert after.status.step_started_at == at(60), "the step (and its pause) starts again"
    if action == "retry" and "RequestIgnored" not in events:
        assert after.status.consecutive_failures == 0
    # the same annotation again: nothing more happens
    assert decide(sim.views, None, sim.now) == []


OTHER_REQUESTS = [
    # (id, versions, the version asked, request, expected state, ignored-message fragment)
    (
        "pause-the-stable",
        [pv("1.0.0", P.STABLE, 100)],
        "1.0.0", "pause@1",
        {"1.0.0": (P.STABLE, 100)}, "pause does nothing in Stable",
    ),
    (
        "promote-the-stable",
        [pv("1.0.0", P.STABLE, 90), canary_at("1.1.0", P.PROGRESSING, 0)],
        "1.0.0", "promote@1",
        {"1.0.0": (P.STABLE, 90), "1.1.0": (P.PROGRESSING, 10)}, "promote does nothing in Stable",
    ),
    (
        "retry-a-superseded-version",
        [pv("1.0.0", P.SUPERSEDED, 0), pv("1.1.0", P.STABLE, 100)],
        "1.0.0", "retry@1",
        {"1.0.0": (P.SUPERSEDED, 0), "1.1.0": (P.STABLE, 100)}, "retry does nothing in Superseded",
    ),
    (
        "retry-a-rollback-older-than-the-stable",
        [pv("1.0.0", P.ROLLED_BACK, 0), pv("1.1.0", P.STABLE, 100)],
        "1.0.0", "retry@1",
        {"1.0.0": (P.ROLLED_BACK, 0), "1.1.0": (P.STABLE, 100)}, "retry: 1.1.0 is newer",
    ),
    (
        "retry-a-rollback-older-than-the-canary",
        [pv("1.0.0", P.STABLE, 90), pv("1.1.0", P.ROLLED_BACK, 0),
         canary_at("1.2.0", P.PROGRESSING, 0)],
        "1.1.0", "retry@1",
        {"1.0.0": (P.STABLE, 90), "1.1.0": (P.ROLLED_BACK, 0), "1.2.0": (P.PROGRESSING, 10)},
        "retry: 1.2.0 rolls out",
    ),
    (
        "retry-a-rollback-newer-than-the-canary",
        [pv("1.0.0", P.STABLE, 50), canary_at("1.1.0", P.PROGRESSING, 1),
         pv("1.2.0", P.ROLLED_BACK, 0)],
        "1.2.0", "retry@1",
        {"1.0.0": (P.STABLE, 90), "1.1.0": (P.SUPERSEDED, 0), "1.2.0": (P.PROGRESSING, 10)},
        None,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("views", "version", "value", "expected", "ignored"),
    [c[1:] for c in OTHER_REQUESTS],
    ids=[c[0] for c in OTHER_REQUESTS],
)
def test_requests_on_other_versions(
    views: list[VersionView],
    version: str,
    value: str,
    expected: dict[str, tuple[Phase, int]],
    ignored: str | None,
) -> None:
    sim = Sim(list(views))
    sim.request(version, value)
    sim.decide()
    assert sim.state() == expected
    assert sim[version].status.handled_request == value
    messages = [(k, m) for _, v, k, r, m in sim.log if v == version and r == "RequestIgnored"]
    assert messages == ([("Warning", ignored)] if ignored else [])


def test_a_request_is_handled_once() -> None:
    sim = rolling_out()
    sim.request("1.1.0", "promote@a")
    sim.decide()
    assert sim["1.1.0"].status.step_index == 1
    sim.tick(1)
    assert sim.decide() == [], "the same annotation, still there, is not acted on again"
    sim.request("1.1.0", "promote@b")
    sim.decide()
    assert sim.state() == {"1.0.0": (Phase.SUPERSEDED, 0), "1.1.0": (Phase.PROMOTED, 100)}


def test_an_unknown_action_is_ignored() -> None:
    sim = rolling_out()
    sim.request("1.1.0", "explode@2")
    assert sim["1.1.0"].request is None
    assert sim.decide() == []
    assert sim["1.1.0"].status.handled_request is None


def test_a_manual_pause_waits_for_promote() -> None:
    steps = [RolloutStep(weight=10, pause="manual"), RolloutStep(weight=50, pause="1m")]
    sim = Sim([pv("1.0.0", Phase.STABLE, 100), pv("1.1.0", spec=make_spec("1.1.0", steps=steps))])
    sim.decide()
    sim.run(HEALTHY, until=3600)
    assert sim.state() == {"1.0.0": (Phase.STABLE, 90), "1.1.0": (Phase.PROGRESSING, 10)}
    sim.request("1.1.0", "promote@1")
    sim.decide()
    assert sim.state() == {"1.0.0": (Phase.STABLE, 50), "1.1.0": (Phase.PROGRESSING, 50)}
    sim.run(HEALTHY, until=3600 + 60)
    assert sim.state() == {"1.0.0": (Phase.SUPERSEDED, 0), "1.1.0": (Phase.PROMOTED, 100)}
    assert sim.when("1.1.0", "Promoted") == 3660


def test_pause_holds_and_resume_restarts_the_step() -> None:
    sim = rolling_out()
    pause = parse_duration(STEPS[0].pause or "0s")
    sim.run(HEALTHY, until=200)
    sim.request("1.1.0", "pause@1")
    sim.decide()
    analysed_at = (sim["1.1.0"].status.last_analysis or {}).get("time")
    sim.run(HEALTHY, until=1000)
    assert sim.state() == {"1.0.0": (Phase.STABLE, 90), "1.1.0": (Phase.PAUSED, 10)}
    assert (sim["1.1.0"].status.last_analysis or {}).get("time") == analysed_at, "no analyses"
    assert not analysis_due(sim["1.1.0"], sim.now)
    sim.request("1.1.0", "resume@2")
    sim.decide()
    assert sim["1.1.0"].status.step_started_at == at(1000)
    sim.run(HEALTHY, until=1000 + pause - 1)
    assert sim["1.1.0"].status.step_index == 0
    sim.run(HEALTHY, until=1000 + pause)
    assert sim["1.1.0"].status.step_index == 1


def test_retry_after_a_rollback_rolls_out_again() -> None:
    sim = rolling_out()
    sim.run(FAILING, until=60)
    assert sim.state()["1.1.0"] == (Phase.ROLLED_BACK, 0)
    sim.request("1.1.0", "retry@1")
    sim.decide()
    assert sim.state() == {"1.0.0": (Phase.STABLE, 90), "1.1.0": (Phase.PROGRESSING, 10)}
    assert sim["1.1.0"].status.consecutive_failures == 0
    sim.run(HEALTHY, until=60 + sum(parse_duration(s.pause or "0s") for s in STEPS))
    assert sim.state() == {"1.0.0": (Phase.SUPERSEDED, 0), "1.1.0": (Phase.PROMOTED, 100)}


# --- versions come and go during a rollout -----------------------------------------------------


def test_a_newer_version_during_a_canary_supersedes_it() -> None:
    sim = rolling_out()
    pause = parse_duration(STEPS[0].pause or "0s")
    sim.run(HEALTHY, until=pause)
    assert sim.state()["1.1.0"] == (Phase.PROGRESSING, 50)
    sim.add(pv("1.2.0"))
    sim.tick(1)
    sim.decide()
    assert sim.state() == {
        "1.0.0": (Phase.STABLE, 90),
        "1.1.0": (Phase.SUPERSEDED, 0),
        "1.2.0": (Phase.PROGRESSING, 10),
    }
    assert sim["1.2.0"].status.step_started_at == at(pause + 1)
    sim.run(HEALTHY, until=pause + 1 + 2 * pause)
    assert sim.state() == {
        "1.0.0": (Phase.SUPERSEDED, 0),
        "1.1.0": (Phase.SUPERSEDED, 0),
        "1.2.0": (Phase.PROMOTED, 100),
    }


def test_stable_deleted_mid_rollout() -> None:
    sim = rolling_out()
    sim.run(HEALTHY, until=30)
    sim.delete("1.0.0")
    sim.tick(1)
    sim.decide()
    assert sim.state() == {"1.1.0": (Phase.PROMOTED, 100)}
    assert sim.log[-1][1:4] == ("1.1.0", "Normal", "Promoted")


# --- pure helpers -----------------------------------------------------------------------------

DUE = [
    # (id, phase, step started (s), last analysis (s), now (s), interval, due)
    ("nothing-recorded", P.PROGRESSING, None, None, 0, "10s", True),
    ("step-started-interval-elapsed", P.PROGRESSING, 0, None, 10, "10s", True),
    ("step-started-interval-not-elapsed", P.PROGRESSING, 0, None, 9, "10s", False),
    ("last-analysis-interval-elapsed", P.PROGRESSING, 0, 50, 60, "10s", True),
    ("last-analysis-interval-not-elapsed", P.PROGRESSING, 0, 50, 59, "10s", False),
    ("step-restarted-after-last-analysis", P.PROGRESSING, 55, 50, 60, "10s", False),
    ("longer-interval", P.PROGRESSING, 0, 30, 60, "1m", False),
    ("paused", P.PAUSED, 0, 0, 3600, "10s", False),
    ("stable", P.STABLE, None, None, 3600, "10s", False),
    ("rolled-back", P.ROLLED_BACK, 0, 0, 3600, "10s", False),
    ("pending", P.PENDING, None, None, 3600, "10s", False),
]


@pytest.mark.parametrize(
    ("phase", "started", "last", "now", "interval", "due"),
    [c[1:] for c in DUE],
    ids=[c[0] for c in DUE],
)
def test_analysis_due(
    phase: Phase,
    started: float | None,
    last: float | None,
    now: float,
    interval: str,
    due: bool,
) -> None:
    view = pv(
        "1.1.0",
        phase,
        10,
        spec=make_spec("1.1.0", interval=interval),
        step_started_at=at(started) if started is not None else None,
        last_analysis={"time": at(last), "verdict": "Successful"} if last is not None else None,
    )
    assert analysis_due(view, T0 + timedelta(seconds=now)) is due


REQUEST_VALUES = [
    ("absent", None, None),
    ("empty", "", None),
    ("promote", "promote@2026-11-25T12:00:00Z", Action.PROMOTE),
    ("promote-full", "promote-full@1", Action.PROMOTE_FULL),
    ("abort", "abort@x", Action.ABORT),
    ("pause", "pause@x", Action.PAUSE),
    ("resume", "resume@x", Action.RESUME),
    ("retry", "retry@x", Action.RETRY),
    ("without-id", "abort", Action.ABORT),
    ("spaces-around-action", " abort @x", Action.ABORT),
    ("unknown-action", "explode@x", None),
    ("upper-case", "PROMOTE@x", None),
    ("id-only", "@x", None),
]


@pytest.mark.parametrize(
    ("value", "action"), [c[1:] for c in REQUEST_VALUES], ids=[c[0] for c in REQUEST_VALUES]
)
def test_parse_request(value: str | None, action: Action | None) -> None:
    request = parse_request(value)
    if action is None:
        assert request is None
    else:
        assert request == ManualRequest(action, value or "")


def test_request_annotation_name() -> None:
    assert REQUEST_ANNOTATION == "promptrollouts.io/request"


CANARIES = [
    ("none", [pv("1.0.0", P.STABLE, 100), pv("1.1.0", P.ROLLED_BACK, 0)], None),
    ("progressing", [pv("1.0.0", P.STABLE, 90), pv("1.1.0", P.PROGRESSING, 10)], "1.1.0"),
    ("paused", [pv("1.0.0", P.STABLE, 90), pv("1.1.0", P.PAUSED, 10)], "1.1.0"),
    ("newest-of-two", [pv("1.2.0", P.PAUSED, 10), pv("1.1.0", P.PROGRESSING, 10)], "1.2.0"),
    ("pending-is-not-a-canary", [pv("1.0.0", P.STABLE, 100), pv("1.1.0")], None),
]


@pytest.mark.parametrize(
    ("views", "version"), [c[1:] for c in CANARIES], ids=[c[0] for c in CANARIES]
)
def test_canary_of(views: list[VersionView], version: str | None) -> None:
    canary = canary_of(views)
    assert (canary.spec.version if canary else None) == version


STABLES = [
    ("stable", [pv("1.0.0", P.STABLE, 90), pv("1.1.0", P.PROGRESSING, 10)], "1.0.0"),
    ("promoted", [pv("1.0.0", P.SUPERSEDED, 0), pv("1.1.0", P.PROMOTED, 100)], "1.1.0"),
    ("newest-of-two", [pv("1.2.0", P.STABLE, 50), pv("1.1.0", P.PROMOTED, 50)], "1.2.0"),
    ("none-left", [pv("1.0.0", P.SUPERSEDED, 0), pv("1.1.0", P.PROGRESSING, 10)], None),
    ("rolled-back-is-not-stable", [pv("1.1.0", P.ROLLED_BACK, 0)], None),
    ("invalid-is-not-stable", [pv("1.0.0", P.INVALID, 0)], None),
]


@pytest.mark.parametrize(
    ("views", "version"), [c[1:] for c in STABLES], ids=[c[0] for c in STABLES]
)
def test_stable_of(views: list[VersionView], version: str | None) -> None:
    stable = stable_of(views)
    assert (stable.spec.version if stable else None) == version


DUE_NOW: dict[str, Any] = {"step_index": 0, "step_started_at": at(0)}
TARGETS = [
    # (id, views, seconds since T0, (canary, stable) measured, or None)
    (
        "canary-due-against-the-stable",
        [pv("1.0.0", P.STABLE, 90), pv("1.1.0", P.PROGRESSING, 10, **DUE_NOW)],
        INTERVAL,
        ("1.1.0", "1.0.0"),
    ),
    (
        "not-due-yet",
        [pv("1.0.0", P.STABLE, 90), pv("1.1.0", P.PROGRESSING, 10, **DUE_NOW)],
        INTERVAL - 1,
        None,
    ),
    (
        "baseline-is-the-newest-stable",
        [
            pv("1.0.0", P.PROMOTED, 0),
            pv("1.0.5", P.STABLE, 90),
            pv("1.0.9", P.SUPERSEDED, 0),
            pv("1.1.0", P.PROGRESSING, 10, **DUE_NOW),
        ],
        INTERVAL,
        ("1.1.0", "1.0.5"),
    ),
    (
        "no-stable-no-baseline",
        [pv("1.0.0", P.SUPERSEDED, 0), pv("1.1.0", P.PROGRESSING, 100, **DUE_NOW)],
        INTERVAL,
        ("1.1.0", None),
    ),
    (
        "paused-canary-is-not-measured",
        [pv("1.0.0", P.STABLE, 90), pv("1.1.0", P.PAUSED, 10, **DUE_NOW)],
        3600,
        None,
    ),
    ("no-canary", [pv("1.0.0", P.STABLE, 100), pv("1.1.0", P.ABORTED, 0)], 3600, None),
    (
        "newest-canary-of-two",
        [
            pv("1.0.0", P.STABLE, 80),
            pv("1.1.0", P.PROGRESSING, 10, **DUE_NOW),
            pv("1.2.0", P.PROGRESSING, 10, **DUE_NOW),
        ],
        INTERVAL,
        ("1.2.0", "1.0.0"),
    ),
]


@pytest.mark.parametrize(
    ("views", "seconds", "expected"), [c[1:] for c in TARGETS], ids=[c[0] for c in TARGETS]
)
def test_decide_analysis(
    views: list[VersionView], seconds: float, expected: tuple[str, str | None] | None
) -> None:
    target = decide_analysis(views, T0 + timedelta(seconds=seconds))
    if expected is None:
        assert target is None
    else:
        assert target is not None
        stable = target.stable.spec.version if target.stable else None
        assert (target.canary.spec.version, stable) == expected


UNREADABLE_BEFORE = [
    ("new", None, ()),
    ("stable", P.STABLE, ("Promoted",)),
    ("progressing", P.PROGRESSING, ("Progressing",)),
]


@pytest.mark.parametrize(
    ("phase", "true"), [c[1:] for c in UNREADABLE_BEFORE], ids=[c[0] for c in UNREADABLE_BEFORE]
)
def test_unreadable_and_unservable_are_marked_invalid_alike(
    phase: Phase | None, true: tuple[str, ...]
) -> None:
    """One path to Invalid: the same patch, but for the message, whatever made it invalid."""
    conditions = [
        Condition(
            type=kind,
            status="True" if kind in true else "False",
            reason="Before",
            last_transition_time=at(-60),
        )
        for kind in ("Degraded", "Progressing", "Promoted")
    ]
    served = pv("1.1.0", phase, 0, invalid="bad", conditions=conditions)
    unreadable = UnreadableVersion(
        served.name, "bad", phase, tuple(read_conditions(served.status.conditions))
    )
    now = T0 + timedelta(seconds=5)
    [by_reason] = decide([served], None, now)
    [by_spec] = decide([], None, now, [unreadable])
    expected = by_reason.status.to_merge_patch()
    for condition in expected["conditions"]:
        condition["message"] = "invalid spec: bad"
    assert by_spec.status.to_merge_patch() == expected | {"message": "invalid spec: bad"}
    assert by_spec.events == [("Warning", "Invalid", "invalid spec: bad")]
    assert by_reason.events == [("Warning", "Invalid", "bad")]
    assert decide([], None, now, [dataclasses.replace(unreadable, phase=P.INVALID)]) == []


def test_an_unreadable_version_takes_no_part_in_the_rollout() -> None:
    """Its index entry is not a view: the readable versions roll out as if it were absent."""
    unreadable = UnreadableVersion(name_of("1.2.0"), "spec.rollout.steps: bad")
    sim = Sim([pv("1.0.0", P.STABLE, 100), pv("1.1.0")])
    changes = decide(sim.views, None, T0, [unreadable])
    assert {c.name: c.status.phase for c in changes} == {
        name_of("1.1.0"): P.PROGRESSING,
        name_of("1.0.0"): None,
        name_of("1.2.0"): P.INVALID,
    }


PLUS_ONE = timezone(timedelta(hours=1))
TIMES = [
    ("utc", datetime(2026, 11, 25, 12, 0, 1, tzinfo=UTC), "2026-11-25T12:00:01Z"),
    ("fraction-dropped", datetime(2026, 11, 25, 12, 0, 1, 999_999, tzinfo=UTC), at(1)),
    ("other-offset", datetime(2026, 11, 25, 13, 0, tzinfo=PLUS_ONE), "2026-11-25T12:00:00Z"),
]


@pytest.mark.parametrize(("moment", "text"), [c[1:] for c in TIMES], ids=[c[0] for c in TIMES])
def test_format_time(moment: datetime, text: str) -> None:
    assert format_time(moment) == text
