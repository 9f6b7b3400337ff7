"""parse_duration: Prometheus-style durations as seconds, everything else a ValueError."""

from __future__ import annotations

import pytest

from controller.durations import parse_duration

VALID = [
    ("seconds", "30s", 30.0),
    ("zero", "0s", 0.0),
    ("minutes", "5m", 300.0),
    ("hours", "1h", 3600.0),
    ("milliseconds", "250ms", 0.25),
    ("hours-and-minutes", "1h30m", 5400.0),
    ("minutes-and-seconds", "1m5s", 65.0),
    ("every-unit", "1h1m1s1ms", 3661.001),
    ("leading-zeros", "010s", 10.0),
]


@pytest.mark.parametrize(("text", "seconds"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


INVALID = [
    ("empty", ""),
    ("bare-number", "30"),
    ("days", "1d"),
    ("fraction", "1.5s"),
    ("negative", "-1s"),
    ("space", "5 m"),
    ("unit-first", "m5"),
    ("trailing-number", "30s5"),
    ("upper-case", "5M"),
    ("leading-space", " 5m"),
    ("manual-is-a-pause-not-a-duration", "manual"),
]


@pytest.mark.parametrize("text", [c[1] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
