"""The scenario key ``notify``: a local receiver the rehearsal's controller notifies.

``notify: {receiver: true, secret: S}`` starts a `NotificationReceiver` on 127.0.0.1,
points the controller at it (``NOTIFY_WEBHOOK_URLS``, ``NOTIFY_SECRET``), and lists what
it received, each with whether its signature verified, under ``"notifications"`` in the
result (docs/rehearse.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rehearsal.notify_receiver import NotificationReceiver

__all__ = ["NotifyBehaviour", "build_notifications", "build_notify_env", "run_receiver"]


class NotifyBehaviour(BaseModel):
    """The scenario's ``notify`` mapping."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    receiver: Literal[True] = Field(
        description="Start a local receiver (the only target a rehearsal notifies)."
    )
    secret: str = Field(min_length=1, max_length=1024, description="The HMAC key (NOTIFY_SECRET).")


@contextlib.contextmanager
def run_receiver(notify: NotifyBehaviour | None) -> Iterator[NotificationReceiver | None]:
    """The receiver `notify` asks for, listening while in the block; None without `notify`."""
    if notify is None:
        yield None
        return
    with NotificationReceiver(notify.secret) as receiver:
        yield receiver


def build_notify_env(receiver: NotificationReceiver | None) -> dict[str, str]:
    """The controller's NOTIFY_* environment for `receiver` (none without one)."""
    if receiver is None:
        return {}
    return {
        "NOTIFY_WEBHOOK_URLS": receiver.url,
        "NOTIFY_SECRET": receiver.secret,
        "NOTIFY_BACKOFF_SECONDS": "0.2",
    }


def build_notifications(receiver: NotificationReceiver) -> tuple[list[dict[str, Any]], list[str]]:
    """What `receiver` got, for the result, and the notes it calls for."""
    received = [r.to_json() for r in receiver.received]
    notes: list[str] = []
    unverified = sum(1 for r in received if not r["verified"])
    if unverified:
        notes.append(f"notify: {unverified} of {len(received)} notification(s) failed verification")
    if not received:
        notes.append("notify: the receiver got no notification")
    return received, notes
