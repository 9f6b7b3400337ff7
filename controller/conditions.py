"""Kubernetes-style status conditions (pure): set one, keep the others, move time only on change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_serializer
from pydantic.alias_generators import to_camel

from api.v1alpha1 import Condition as StoredCondition

__all__ = ["Condition", "format_time", "parse_time", "read_conditions", "set_condition"]


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with a Z, as Kubernetes writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time as written in status; None when absent, ValueError when unreadable."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Condition(BaseModel):
    """One condition as the controller writes it: times stay datetimes until serialised."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None
    observed_generation: int | None = None

    @field_serializer("last_transition_time")
    def _rfc3339(self, value: datetime | None) -> str | None:
        return None if value is None else format_time(value)


def read_conditions(stored: Sequence[StoredCondition]) -> list[Condition]:
    """The conditions of a stored status, as the controller's model (unreadable times dropped)."""
    return [
        Condition(
            type=c.type,
            status=c.status,
            reason=c.reason,
            message=c.message,
            last_transition_time=_lenient_time(c.last_transition_time),
            observed_generation=c.observed_generation,
        )
        for c in stored
    ]


def _lenient_time(value: str | None) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None


def set_condition(
    conditions: Sequence[Condition],
    kind: str,
    status: bool,
    reason: str,
    message: str,
    now: datetime,
) -> list[Condition]:
    """`conditions` with `kind` set; lastTransitionTime changes only when the status flips."""
    value: Literal["True", "False"] = "True" if status else "False"
    previous = next((c for c in conditions if c.type == kind), None)
    transition = (
        previous.last_transition_time
        if previous is not None
        and previous.status == value
        and previous.last_transition_time is not None
        else now
    )
    updated = Condition(
        type=kind, status=value, reason=reason, message=message, last_transition_time=transition
    )
    others = [c for c in conditions if c.type != kind]
    return sorted([*others, updated], key=lambda c: c.type)
