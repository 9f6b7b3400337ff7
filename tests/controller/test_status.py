"""The typed status patch and the one way to mark a version Invalid (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from api.v1alpha1 import Phase
from controller.conditions import Condition
from controller.status import StatusPatch, build_phase_conditions, decide_invalid

EARLIER = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 12, 0, 30, 999_999, tzinfo=UTC)
NOW_TEXT = "2026-11-25T12:00:30Z"
EARLIER_TEXT = "2026-11-25T11:00:00Z"


def cond(kind: str, status: bool, time: datetime = EARLIER, reason: str = "Old") -> Condition:
    value = "True" if status else "False"
    return Condition(
        type=kind, status=value, reason=reason, message="old", last_transition_time=time
    )


# --- StatusPatch ------------------------------------------------------------------------------

PATCHES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("nothing-set-is-empty", {}, {}),
    (
        "camel-case-names",
        {"step_index": 2, "handled_request": "abort@1"},
        {
            "stepIndex": 2,
            "handledRequest": "abort@1",
        },
    ),
    (
        "phase-is-its-value",
        {"phase": Phase.ROLLED_BACK, "weight": 0},
        {
            "phase": "RolledBack",
            "weight": 0,
        },
    ),
    ("datetime-written-at-the-end", {"step_started_at": NOW}, {"stepStartedAt": NOW_TEXT}),
    (
        "explicit-none-is-a-deletion",
        {"step_started_at": None, "message": None},
        {
            "stepStartedAt": None,
            "message": None,
        },
    ),
    (
        "zero-counters-are-written",
        {"consecutive_failures": 0, "consecutive_errors": 0},
        {
            "consecutiveFailures": 0,
            "consecutiveErrors": 0,
        },
    ),
    (
        "nested-deletions-kept",
        {"last_analysis": {"time": NOW_TEXT, "error": None}},
        {"lastAnalysis": {"time": NOW_TEXT, "error": None}},
    ),
    (
        "conditions-without-empty-fields",
        {"conditions": [Condition(type="Promoted", status="True", last_transition_time=NOW)]},
        {
            "conditions": [
                {
                    "type": "Promoted",
                    "status": "True",
                    "reason": "",
                    "message": "",
                    "lastTransitionTime": NOW_TEXT,
                }
            ]
        },
    ),
]


@pytest.mark.parametrize(("fields", "patch"), [c[1:] for c in PATCHES], ids=[c[0] for c in PATCHES])
def test_to_merge_patch(fields: dict[str, Any], patch: dict[str, Any]) -> None:
    assert StatusPatch(**fields).to_merge_patch() == patch
    updated = StatusPatch()
    updated.update(**fields)
    assert updated.to_merge_patch() == patch, "update() sets fields like the constructor"


def test_update_validates_and_tracks_what_was_set() -> None:
    patch = StatusPatch(weight=10)
    patch.update(phase="Paused")
    assert patch.phase is Phase.PAUSED
    assert patch.has("weight") and patch.has("phase") and not patch.has("message")
    with pytest.raises(ValidationError):
        patch.update(weight="ten")
    with pytest.raises(ValidationError):
        patch.update(stepIndx=1)
    assert patch.to_merge_patch() == {"weight": 10, "phase": "Paused"}


# --- the one path to Invalid ------------------------------------------------------------------

INVALID = [
    # (id, phase before, conditions before, expected (type, status, lastTransitionTime))
    (
        "new-object",
        None,
        [],
        [
            ("Degraded", "True", NOW_TEXT),
            ("Progressing", "False", NOW_TEXT),
            ("Promoted", "False", NOW_TEXT),
        ],
    ),
    (
        "stable-loses-promoted",
        Phase.STABLE,
        [cond("Degraded", False), cond("Progressing", False), cond("Promoted", True)],
        [
            ("Degraded", "True", NOW_TEXT),
            ("Progressing", "False", EARLIER_TEXT),
            ("Promoted", "False", NOW_TEXT),
        ],
    ),
    (
        "canary-stops-progressing",
        Phase.PROGRESSING,
        [cond("Degraded", False), cond("Progressing", True), cond("Promoted", False)],
        [
            ("Degraded", "True", NOW_TEXT),
            ("Progressing", "False", NOW_TEXT),
            ("Promoted", "False", EARLIER_TEXT),
        ],
    ),
    (
        "already-degraded-keeps-its-time",
        Phase.ROLLED_BACK,
        [cond("Degraded", True), cond("Progressing", False), cond("Promoted", False)],
        [
            ("Degraded", "True", EARLIER_TEXT),
            ("Progressing", "False", EARLIER_TEXT),
            ("Promoted", "False", EARLIER_TEXT),
        ],
    ),
    (
        "foreign-condition-kept",
        Phase.PENDING,
        [cond("Ready", True)],
        [
            ("Degraded", "True", NOW_TEXT),
            ("Progressing", "False", NOW_TEXT),
            ("Promoted", "False", NOW_TEXT),
            ("Ready", "True", EARLIER_TEXT),
        ],
    ),
]


@pytest.mark.parametrize(
    ("phase", "conditions", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_decide_invalid(
    phase: Phase | None, conditions: list[Condition], expected: list[tuple[str, str, str]]
) -> None:
    change = decide_invalid("faq-1-1-0", phase, conditions, "invalid spec: bad", NOW)
    assert change is not None
    assert change.name == "faq-1-1-0"
    assert change.events == [("Warning", "Invalid", "invalid spec: bad")]
    patch = change.status.to_merge_patch()
    assert {k: v for k, v in patch.items() if k != "conditions"} == {
        "phase": "Invalid",
        "weight": 0,
        "message": "invalid spec: bad",
    }
    written = [(c["type"], c["status"], c["lastTransitionTime"]) for c in patch["conditions"]]
    assert written == expected
    for condition in patch["conditions"]:
        if condition["type"] != "Ready":
            assert (condition["reason"], condition["message"]) == ("Invalid", "invalid spec: bad")


def test_an_invalid_version_is_not_marked_again() -> None:
    conditions = build_phase_conditions([], Phase.INVALID, "bad", EARLIER)
    assert decide_invalid("faq-1-1-0", Phase.INVALID, conditions, "worse", NOW) is None


PHASE_CONDITIONS = [
    # (phase, Promoted, Progressing, Degraded)
    (Phase.STABLE, "True", "False", "False"),
    (Phase.PROMOTED, "True", "False", "False"),
    (Phase.PROGRESSING, "False", "True", "False"),
    (Phase.PAUSED, "False", "True", "False"),
    (Phase.ROLLED_BACK, "False", "False", "True"),
    (Phase.ABORTED, "False", "False", "True"),
    (Phase.INVALID, "False", "False", "True"),
    (Phase.SUPERSEDED, "False", "False", "False"),
]


@pytest.mark.parametrize(
    ("phase", "promoted", "progressing", "degraded"),
    PHASE_CONDITIONS,
    ids=[c[0].value for c in PHASE_CONDITIONS],
)
def test_build_phase_conditions(
    phase: Phase, promoted: str, progressing: str, degraded: str
) -> None:
    conditions = build_phase_conditions([], phase, "why", NOW)
    assert {c.type: c.status for c in conditions} == {
        "Degraded": degraded,
        "Progressing": progressing,
        "Promoted": promoted,
    }
    assert {(c.reason, c.message, c.last_transition_time) for c in conditions} == {
        (phase.value, "why", NOW)
    }
