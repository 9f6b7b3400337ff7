"""Prometheus-style durations ("30s", "1h30m", "250ms") as seconds (pure)."""

from __future__ import annotations

import re

__all__ = ["parse_duration"]

_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError for anything that is not a duration."""
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h30m")
    return sum(int(number) * _SECONDS[unit] for number, unit in parts)
