"""Objects → views (pure): readable versions, and what is still read of an unreadable one."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.v1alpha1 import Phase
from controller.rollout import decide
from controller.versions import UnreadableVersion, VersionView
from controller.views import build_view, build_views

MANIFEST = Path(__file__).resolve().parents[2] / "prompts" / "policy-qa-1.1.0.yaml"
BODY: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STABLE_CONDITION = {
    "type": "Promoted",
    "status": "True",
    "reason": "Stable",
    "message": "first version of the prompt",
    "lastTransitionTime": "2026-11-25T11:00:00Z",
}


def broken(status: Any = None) -> dict[str, Any]:
    """policy-qa 1.1.0 with step weights that decrease (the CRD schema cannot say so)."""
    body = copy.deepcopy(BODY)
    body["metadata"]["uid"] = "u-1"
    body["spec"]["rollout"]["steps"] = [{"weight": 50}, {"weight": 20}]
    if status is not None:
        body["status"] = status
    return body


UNREADABLE = [
    # (id, status as stored, phase read, condition types read)
    ("no-status", None, None, ()),
    ("stable", {"phase": "Stable", "conditions": [STABLE_CONDITION]}, Phase.STABLE, ("Promoted",)),
    ("unknown-phase", {"phase": "Exploded"}, None, ()),
    ("status-not-an-object", "garbage", None, ()),
    ("conditions-not-a-list", {"phase": "Invalid", "conditions": "x"}, Phase.INVALID, ()),
    (
        "broken-condition-left-out",
        {"conditions": [{"status": "True"}, 7, STABLE_CONDITION]},
        None,
        ("Promoted",),
    ),
]


@pytest.mark.parametrize(
    ("status", "phase", "kinds"), [c[1:] for c in UNREADABLE], ids=[c[0] for c in UNREADABLE]
)
def test_unreadable_spec(status: Any, phase: Phase | None, kinds: tuple[str, ...]) -> None:
    view = build_view(broken(status))
    assert isinstance(view, UnreadableVersion)
    assert view.name == "policy-qa-1-1-0"
    assert "step weights must strictly increase" in view.reason
    assert view.phase is phase
    assert tuple(c.type for c in view.conditions) == kinds


def test_unreadable_stable_is_marked_invalid_keeping_its_condition_history() -> None:
    views, unreadable = build_views([broken({"phase": "Stable", "conditions": [STABLE_CONDITION]})])
    assert views == []
    [change] = decide(views, None, NOW, unreadable)
    patch = change.status.to_merge_patch()
    assert (patch["phase"], patch["weight"]) == ("Invalid", 0)
    assert patch["message"].startswith("invalid spec: spec.rollout.steps")
    assert {c["type"]: (c["status"], c["lastTransitionTime"]) for c in patch["conditions"]} == {
        "Degraded": ("True", "2026-11-25T12:00:00Z"),
        "Progressing": ("False", "2026-11-25T12:00:00Z"),
        "Promoted": ("False", "2026-11-25T12:00:00Z"),
    }


def test_build_views_splits_readable_from_unreadable() -> None:
    readable = copy.deepcopy(BODY)
    views, unreadable = build_views([readable, broken()])
    assert [type(v) for v in views] == [VersionView]
    assert [u.name for u in unreadable] == ["policy-qa-1-1-0"]
