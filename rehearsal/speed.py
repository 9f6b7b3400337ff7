"""The ``--speed`` maths of a rehearsal (pure): a scenario's time divided by the speed.

`decide_timing` compresses the traffic's duration; `build_rehearsal_manifest` divides a
PromptVersion's step pauses, analysis interval and window, never taking intervals below
`MIN_INTERVAL_SECONDS` or windows below `MIN_WINDOW_SECONDS` (the notes say where).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from controller.durations import parse_duration
from rehearsal.scenario import MIN_INTERVAL_SECONDS, MIN_WINDOW_SECONDS, Scenario

__all__ = ["Timing", "build_rehearsal_manifest", "decide_timing", "format_duration"]


def format_duration(seconds: float) -> str:
    """Seconds as a CRD duration: whole seconds when exact, else milliseconds (pure)."""
    millis = max(1, math.ceil(seconds * 1000))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


@dataclass(frozen=True)
class Timing:
    """The compressed durations of one rehearsal, and what had to be clamped."""

    speed: float
    duration_seconds: float
    notes: tuple[str, ...]


def decide_timing(scenario: Scenario, speed: float) -> Timing:
    """Traffic duration divided by `speed` (pure)."""
    duration = parse_duration(scenario.traffic.duration) / speed
    return Timing(speed=speed, duration_seconds=duration, notes=())


def build_rehearsal_manifest(
    manifest: dict[str, Any], speed: float
) -> tuple[dict[str, Any], list[str]]:
    """`manifest` with its step pauses, shadow durations, analysis interval and window
    divided by `speed` (pure); intervals never below 1 s and windows never below 5 s (the
    notes say where)."""
    result = copy.deepcopy(manifest)
    name = f"{manifest['spec']['prompt']} {manifest['spec']['version']}"
    rollout = result["spec"].setdefault("rollout", {})
    notes: list[str] = []
    for step in rollout.get("steps") or []:
        if step.get("pause") and step["pause"] != "manual":
            step["pause"] = format_duration(parse_duration(step["pause"]) / speed)
        shadow = step.get("shadow")
        if isinstance(shadow, dict) and shadow.get("duration"):
            shadow["duration"] = format_duration(parse_duration(shadow["duration"]) / speed)
    analysis = rollout.setdefault("analysis", {})
    for key, default, floor in (
        ("interval", "10s", MIN_INTERVAL_SECONDS),
        ("window", "1m", MIN_WINDOW_SECONDS),
    ):
        original = parse_duration(analysis.get(key, default))
        scaled = original / speed
        if scaled < floor and scaled < original:
            notes.append(
                f"{name}: analysis.{key} {analysis.get(key, default)} / {speed:g} = "
                f"{format_duration(scaled)}, kept at {format_duration(min(original, floor))}"
            )
            scaled = min(original, floor)
        if key in analysis or speed != 1:
            analysis[key] = format_duration(scaled)
    return result, notes
