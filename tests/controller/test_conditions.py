"""set_condition: one condition set, the others kept, lastTransitionTime moved only on a flip."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import pytest

from api.v1alpha1 import Condition as StoredCondition
from controller.conditions import Condition, format_time, parse_time, read_conditions, set_condition

EARLIER = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
Status = Literal["True", "False", "Unknown"]


def _condition(kind: str, status: Status, time: datetime | None = EARLIER) -> Condition:
    return Condition(
        type=kind, status=status, reason="Old", message="old", last_transition_time=time
    )


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
def test_transition_time(existing: list[Condition], status: bool, transition: datetime) -> None:
    result = set_condition(existing, "Promoted", status, "Stable", "first version", NOW)
    assert [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in result] == [
        {
            "type": "Promoted",
            "status": "True" if status else "False",
            "reason": "Stable",
            "message": "first version",
            "lastTransitionTime": format_time(transition),
        }
    ]


def test_other_conditions_are_kept_and_sorted_by_type() -> None:
    progressing = _condition("Progressing", "True")
    degraded = _condition("Degraded", "False")
    result = set_condition([progressing, degraded], "Promoted", True, "Stable", "m", NOW)
    assert [c.type for c in result] == ["Degraded", "Progressing", "Promoted"]
    assert result[0] == degraded
    assert result[1] == progressing


def test_input_is_not_modified() -> None:
    existing = [_condition("Promoted", "False")]
    before = list(existing)
    set_condition(existing, "Promoted", True, "Stable", "m", NOW)
    assert existing == before


def test_setting_twice_keeps_one_condition_per_type() -> None:
    once = set_condition([], "Degraded", True, "RolledBack", "a", EARLIER)
    twice = set_condition(once, "Degraded", True, "RolledBack", "b", NOW)
    assert len(twice) == 1
    assert twice[0].message == "b"
    assert twice[0].last_transition_time == EARLIER


STORED = [
    # (id, stored lastTransitionTime, read back)
    ("z-suffix", "2026-11-25T11:00:00Z", EARLIER),
    ("offset", "2026-11-25T12:00:00+01:00", EARLIER),
    ("absent", None, None),
    ("unreadable-dropped", "yesterday", None),
]


@pytest.mark.parametrize(("text", "moment"), [c[1:] for c in STORED], ids=[c[0] for c in STORED])
def test_read_conditions_parses_times(text: str | None, moment: datetime | None) -> None:
    stored = StoredCondition(
        type="Promoted", status="True", reason="Stable", last_transition_time=text
    )
    [condition] = read_conditions([stored])
    assert condition.last_transition_time == moment
    assert (condition.type, condition.status, condition.reason) == ("Promoted", "True", "Stable")


def test_a_foreign_condition_round_trips_through_the_patch_form() -> None:
    stored = StoredCondition(
        type="Ready",
        status="Unknown",
        reason="Elsewhere",
        message="set by another tool",
        last_transition_time="2026-11-25T11:00:00Z",
        observed_generation=3,
    )
    [condition] = read_conditions([stored])
    assert condition.model_dump(mode="json", by_alias=True, exclude_none=True) == (
        stored.model_dump(mode="json", by_alias=True, exclude_none=True)
    )


def test_parse_time_refuses_what_is_not_a_time() -> None:
    assert parse_time(None) is None
    assert parse_time("") is None
    with pytest.raises(ValueError, match="yesterday"):
        parse_time("yesterday")
