"""Kubernetes-style status conditions (pure): set one, keep the others, move time only on change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["set_condition"]


def set_condition(
    conditions: Sequence[dict[str, Any]],
    kind: str,
    status: bool,
    reason: str,
    message: str,
    now: str,
) -> list[dict[str, Any]]:
    """`conditions` with `kind` set; lastTransitionTime changes only when the status flips."""
    value = "True" if status else "False"
    previous = next((c for c in conditions if c.get("type") == kind), None)
    transition = (
        previous["lastTransitionTime"]
        if previous is not None
        and previous.get("status") == value
        and previous.get("lastTransitionTime")
        else now
    )
    updated = {
        "type": kind,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    others = [c for c in conditions if c.get("type") != kind]
    return sorted([*others, updated], key=lambda c: str(c.get("type")))
