"""set_condition: one condition set, the others kept, lastTransitionTime moved only on a flip."""

from __future__ import annotations

from typing import Any

import pytest

from controller.conditions import set_condition

EARLIER = "2026-11-25T11:00:00Z"
NOW = "2026-11-25T12:00:00Z"


def _condition(kind: str, status: str, time: str | None = EARLIER) -> dict[str, Any]:
    condition = {"type": kind, "status": status, "reason": "Old", "message": "old"}
    if time is not None:
        condition["lastTransitionTime"] = time
    return condition


CASES = [
    # (id, existing, status to set, expected lastTransitionTime)
    ("new-condition", [], True, NOW),
    ("same-status-keeps-time", [_condition("Promoted", "True")], True, EARLIER),
    ("false-stays-false-keeps-time", [_condition("Promoted", "False")], False, EARLIER),
    ("true-to-false-moves-time", [_condition("Promoted", "True")], False, NOW),
    ("false-to-true-moves-time", [_condition("Promoted", "False")], True, NOW),
    ("unknown-to-true-moves-time", [_condition("Promoted", "Unknown")], True, NOW),
    ("same-status-without-time-gets-now", [_condition("Promoted", "True", None)], True, NOW),
]


@pytest.mark.parametrize(
    ("existing", "status", "transition"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_transition_time(existing: list[dict[str, Any]], status: bool, transition: str) -> None:
    result = set_condition(existing, "Promoted", status, "Stable", "first version", NOW)
    assert result == [
        {
            "type": "Promoted",
            "status": "True" if status else "False",
            "reason": "Stable",
            "message": "first version",
            "lastTransitionTime": transition,
        }
    ]


def test_other_conditions_are_kept_and_sorted_by_type() -> None:
    progressing = _condition("Progressing", "True")
    degraded = _condition("Degraded", "False")
    result = set_condition([progressing, degraded], "Promoted", True, "Stable", "m", NOW)
    assert [c["type"] for c in result] == ["Degraded", "Progressing", "Promoted"]
    assert result[0] == degraded
    assert result[1] == progressing


def test_input_is_not_modified() -> None:
    existing = [_condition("Promoted", "False")]
    before = [dict(c) for c in existing]
    set_condition(existing, "Promoted", True, "Stable", "m", NOW)
    assert existing == before


def test_setting_twice_keeps_one_condition_per_type() -> None:
    once = set_condition([], "Degraded", True, "RolledBack", "a", EARLIER)
    twice = set_condition(once, "Degraded", True, "RolledBack", "b", NOW)
    assert len(twice) == 1
    assert twice[0]["message"] == "b"
    assert twice[0]["lastTransitionTime"] == EARLIER
