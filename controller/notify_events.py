"""Phase transitions and the events that announce them (pure).

:func:`decide_transitions` reads the changes :func:`controller.rollout.decide` is about to
write: a change that sets a phase other than the version's current one is a transition.
:func:`build_event` turns one into the JSON event, :func:`render_body` into the exact
bytes sent (``json`` or a Slack incoming-webhook payload), which
:mod:`controller.signing` signs. Nothing here reads a clock or the network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from api.v1alpha1 import Phase
from controller.conditions import format_time
from controller.notify_config import render_dashboard_url
from controller.status import Change
from controller.versions import UnreadableVersion, VersionView

__all__ = [
    "Transition",
    "build_event",
    "decide_transitions",
    "render_body",
]

#: What of status.lastAnalysis an event carries (the PromQL queries stay in status).
_ANALYSIS_KEYS = ("time", "verdict", "reasons", "values", "error")


@dataclass(frozen=True)
class Transition:
    """One version's phase change, as the decision about to be written makes it."""

    name: str
    version: str | None
    previous_phase: Phase | None
    phase: Phase
    reason: str
    #: The latest analysis (what this decision writes, else what status holds), trimmed.
    analysis: dict[str, Any] | None
    time: datetime


def _without_nulls(value: Any) -> Any:
    """A merge patch's deletions (None) removed: what status holds once it is applied."""
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _summary(analysis: Mapping[str, Any] | None, quality: str | None) -> dict[str, Any] | None:
    if not analysis and quality is None:
        return None
    analysis = _without_nulls(analysis or {})
    summary = {k: analysis[k] for k in _ANALYSIS_KEYS if k in analysis}
    summary["quality"] = quality
    return summary


def decide_transitions(
    views: Sequence[VersionView],
    unreadable: Sequence[UnreadableVersion],
    changes: Sequence[Change],
    now: datetime,
) -> dict[str, Transition]:
    """The transitions among `changes`, by object name (at most one per object)."""
    by_name = {v.name: v for v in views}
    unread = {u.name: u for u in unreadable}
    found: dict[str, Transition] = {}
    for change in changes:
        patch = change.status
        if not patch.has("phase") or patch.phase is None:
            continue
        view = by_name.get(change.name)
        previous = view.phase if view is not None else unread[change.name].phase
        if patch.phase is previous:
            continue
        analysis = quality = None
        if view is not None:
            written = patch.last_analysis if patch.has("last_analysis") else None
            analysis = written or view.status.last_analysis
            quality = patch.quality if patch.has("quality") else view.status.quality
        found[change.name] = Transition(
            name=change.name,
            version=view.spec.version if view is not None else None,
            previous_phase=previous,
            phase=patch.phase,
            reason=patch.message or "",
            analysis=_summary(analysis, quality),
            time=now,
        )
    return found


def build_event(
    transition: Transition,
    *,
    prompt: str,
    namespace: str | None,
    event_id: str,
    dashboard_template: str = "",
) -> dict[str, Any]:
    """The JSON event of `transition` (docs/rollouts.md, "Notifications")."""
    phase = transition.phase.value
    values = {
        "prompt": prompt,
        "version": transition.version,
        "namespace": namespace,
        "phase": phase,
    }
    return {
        "id": event_id,
        "prompt": prompt,
        "namespace": namespace,
        "name": transition.name,
        "version": transition.version,
        "phase": phase,
        "previousPhase": transition.previous_phase.value if transition.previous_phase else None,
        "reason": transition.reason,
        "analysis": transition.analysis,
        "time": format_time(transition.time),
        "links": {"dashboard": render_dashboard_url(dashboard_template, values)},
    }


def _slack_text(event: Mapping[str, Any]) -> str:
    previous = event.get("previousPhase") or "none"
    text = (
        f"*{event['prompt']}* {event.get('version') or event['name']}: "
        f"{previous} → *{event['phase']}*"
    )
    if event.get("reason"):
        text += f"\n{event['reason']}"
    analysis = event.get("analysis") or {}
    if analysis.get("quality"):
        text += f"\nQuality: {analysis['quality']}"
    dashboard = (event.get("links") or {}).get("dashboard")
    if dashboard:
        text += f"\n<{dashboard}|Dashboard>"
    return text


def render_body(event: Mapping[str, Any], format: Literal["json", "slack"]) -> bytes:
    """The exact bytes POSTed for `event`: the event itself, or a Slack payload."""
    if format == "slack":
        text = _slack_text(event)
        payload: Mapping[str, Any] = {
            "text": text,
            # Slack refuses a section text over 3,000 characters; `text` itself may be longer.
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}],
        }
    else:
        payload = event
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
