"""The operator's notification hooks: build the notifier from settings, submit transitions.

Kept apart from :mod:`controller.operator` so its handlers stay thin: a transition is
submitted right after its status patch succeeded, keyed by (uid, resourceVersion it was
decided from, phase), so a reconcile that still sees the old object does not announce
the same transition twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from controller.metrics import ControllerMetrics
from controller.notify_delivery import Notifier
from controller.notify_events import Transition, build_event
from controller.settings import ControllerSettings

__all__ = ["build_notifier", "submit_transition"]


def build_notifier(config: ControllerSettings, metrics: ControllerMetrics) -> Notifier:
    """The notifier the settings describe (no URLs: one that sends nothing)."""
    return Notifier(
        config.notify_urls,
        config.notify_secret.get_secret_value(),
        metrics,
        format=config.notify_format,
        queue_size=config.notify_queue_size,
        max_attempts=config.notify_max_attempts,
        timeout_seconds=config.notify_timeout_seconds,
        backoff_seconds=config.notify_backoff_seconds,
    )


def submit_transition(
    notifier: Notifier,
    transition: Transition,
    body: Mapping[str, Any],
    *,
    prompt: str,
    namespace: str | None,
    dashboard_template: str,
) -> bool:
    """Queue the event of `transition` of the object `body` (decided from it); never waits."""
    if not notifier.enabled:
        return False
    metadata = body.get("metadata") or {}
    key = (
        str(metadata.get("uid") or f"{namespace}/{transition.name}"),
        str(metadata.get("resourceVersion") or ""),
        transition.phase.value,
    )
    event_id = hashlib.sha256("\x00".join(key).encode()).hexdigest()[:32]
    event = build_event(
        transition,
        prompt=prompt,
        namespace=namespace,
        event_id=event_id,
        dashboard_template=dashboard_template,
    )
    return notifier.submit(event, key)
