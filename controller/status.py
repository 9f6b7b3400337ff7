"""Status patches (pure): the typed merge patch of one PromptVersion, and the one way to Invalid.

A :class:`StatusPatch` holds only the fields a decision set (pydantic's
``model_fields_set``); :meth:`StatusPatch.to_merge_patch` writes them with their
camelCase names, an explicit ``None`` staying a JSON ``null`` (a deletion, RFC 7386).
Times stay ``datetime`` until that moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_serializer
from pydantic.alias_generators import to_camel

from api.v1alpha1 import Phase, StepKind
from controller.conditions import Condition, format_time, set_condition

__all__ = [
    "CANARY_PHASES",
    "HALTED_PHASES",
    "STABLE_PHASES",
    "Change",
    "StatusPatch",
    "build_phase_conditions",
    "decide_invalid",
]

STABLE_PHASES = frozenset({Phase.STABLE, Phase.PROMOTED})
CANARY_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED})
HALTED_PHASES = frozenset({Phase.ROLLED_BACK, Phase.ABORTED})


class StatusPatch(BaseModel):
    """The status fields one decision changes; unset fields are left alone by the patch."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    phase: Phase | None = None
    weight: int | None = None
    message: str | None = None
    conditions: list[Condition] | None = None
    step_index: int | None = None
    step_kind: StepKind | None = None
    shadow_percent: int | None = None
    shadow_samples: int | None = None
    step_started_at: datetime | None = None
    consecutive_failures: int | None = None
    consecutive_errors: int | None = None
    handled_request: str | None = None
    #: Already a merge patch object (keys to delete are None): see rollout's `_replacing`.
    last_analysis: dict[str, Any] | None = None
    #: The quality verdict in one line (controller.analysis.Assessment.quality_summary).
    quality: str | None = None
    #: The whole status.gates list (WebhookResult objects, camelCase): a list is replaced.
    gates: list[dict[str, Any]] | None = None
    #: The eval gate's result (api.v1alpha1.EvalGateResult, camelCase): replaced whole.
    eval_gate: dict[str, Any] | None = None

    @field_serializer("step_started_at")
    def _rfc3339(self, value: datetime | None) -> str | None:
        return None if value is None else format_time(value)

    def has(self, name: str) -> bool:
        """Whether this patch sets field `name` (snake_case)."""
        return name in self.model_fields_set

    def update(self, **fields: Any) -> None:
        """Set `fields` (snake_case names), validated like the constructor."""
        checked = StatusPatch.model_validate(fields)
        for name in fields:
            setattr(self, name, getattr(checked, name))

    def to_merge_patch(self) -> dict[str, Any]:
        """The JSON merge patch for ``/status``: set fields only, ``None`` deletes."""
        patch = self.model_dump(
            mode="json", by_alias=True, exclude_unset=True, exclude={"conditions"}
        )
        if self.has("conditions"):
            patch["conditions"] = (
                None
                if self.conditions is None
                else [
                    c.model_dump(mode="json", by_alias=True, exclude_none=True)
                    for c in self.conditions
                ]
            )
        return patch


@dataclass
class Change:
    """A status merge patch for one object, and the Events that explain it."""

    name: str
    status: StatusPatch = field(default_factory=StatusPatch)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def build_phase_conditions(
    conditions: Sequence[Condition], phase: Phase, message: str, now: datetime
) -> list[Condition]:
    """`conditions` with Promoted, Progressing and Degraded set for `phase`; others kept."""
    result = list(conditions)
    for kind, value in (
        ("Promoted", phase in STABLE_PHASES),
        ("Progressing", phase in CANARY_PHASES),
        ("Degraded", phase in HALTED_PHASES or phase is Phase.INVALID),
    ):
        result = set_condition(result, kind, value, phase.value, message, now)
    return result


def decide_invalid(
    name: str,
    phase: Phase | None,
    conditions: Sequence[Condition],
    message: str,
    now: datetime,
) -> Change | None:
    """The change that marks a version Invalid (weight 0, Degraded, a Warning); None if it is."""
    if phase is Phase.INVALID:
        return None
    status = StatusPatch(
        phase=Phase.INVALID,
        weight=0,
        message=message,
        conditions=build_phase_conditions(conditions, Phase.INVALID, message, now),
    )
    return Change(name, status, [("Warning", Phase.INVALID.value, message)])
