"""The webhook calls and eval runs a decision asks for, their outcomes, and a gate's verdict
(pure data).

Kept apart from :mod:`controller.gates` and :mod:`controller.eval_gate` so the plan
(:mod:`controller.plan`) can carry them without importing the gate logic that works on the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from api.v1alpha1 import EvalGate, Phase, Webhook
from controller.versions import VersionView

__all__ = [
    "EvalCall",
    "EvalOutcome",
    "EvalResults",
    "Gate",
    "GateCall",
    "GateOutcome",
    "GateResults",
    "build_payload",
]


class Gate(Enum):
    """A gate's verdict on a version."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password; every gate said yes (or there are none)
    WAIT = "wait"  # an answer is not known yet: the kopf layer calls and decides again
    HOLD = "hold"  # a confirm-* webhook said no: stay where it is
    STOP = "stop"  # a pre-rollout webhook or the eval gate failed: the version is stopped


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


@dataclass(frozen=True)
class EvalCall:
    """An eval run the kopf layer must make: `candidate` (object `name`) against `baseline`."""

    name: str
    prompt: str
    candidate: str
    baseline: str | None
    gate: EvalGate


@dataclass(frozen=True)
class EvalOutcome:
    """What one run gave; `passed` False with a `reason` for anything but a clean pass."""

    passed: bool
    reason: str
    summary: str = ""
    digest: str = ""
    cases: int = 0
    pass_rate: float | None = None
    baseline_pass_rate: float | None = None
    regressions: tuple[str, ...] = ()
    #: The ConfigMap holding the full Markdown report, when it was written.
    report: str | None = None
    #: Extra Events (type, reason, message) the run asks for (e.g. a report not written).
    notes: tuple[tuple[str, str, str], ...] = field(default=())


#: Outcomes of this tick's runs, by object name.
EvalResults = Mapping[str, EvalOutcome]
