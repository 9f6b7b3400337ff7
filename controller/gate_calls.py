"""The webhook calls a decision asks for, and their outcomes (pure data).

Kept apart from :mod:`controller.gates` so the plan (:mod:`controller.plan`) can carry them
without importing the gate logic that works on the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from api.v1alpha1 import Phase, Webhook
from controller.versions import VersionView

__all__ = ["GateCall", "GateOutcome", "GateResults", "build_payload"]


@dataclass(frozen=True)
class GateOutcome:
    """What one call of a webhook gave: a 2xx answer or not, and a short why."""

    ok: bool
    message: str


#: Outcomes of this tick's calls, by (object name, webhook name).
GateResults = Mapping[tuple[str, str], GateOutcome]


@dataclass(frozen=True)
class GateCall:
    """A webhook the kopf layer must call: for object `name`, with this JSON `payload`."""

    name: str
    hook: Webhook
    payload: dict[str, Any] = field(hash=False)


def build_payload(view: VersionView, hook: Webhook, phase: Phase) -> dict[str, Any]:
    """The JSON body sent to `hook` for `view`."""
    return {
        "prompt": view.spec.prompt,
        "version": view.spec.version,
        "phase": phase.value,
        "step": view.status.step_index,
        "type": hook.type.value,
        "metadata": dict(hook.metadata),
    }
