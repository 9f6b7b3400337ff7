"""What one benchmark run measures, and the pure statistics over it.

The types every other ``bench`` module passes around (``Params`` in, ``Results`` out) and
the numbers that matter (percentiles, paired differences, the target), as pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = [
    "DEFAULT_OUTPUT",
    "REPO",
    "BenchError",
    "Hotspot",
    "LatencyRow",
    "Params",
    "Profile",
    "Results",
    "ThroughputRow",
    "assess_target",
    "build_latency_rows",
    "build_paired_median",
    "percentile",
]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks.md"
#: The target: added latency at p50 and p99, in ms, with retrieval disabled.
TARGET_P50_MS = 1.0
TARGET_P99_MS = 5.0
PERCENTILES = (50, 90, 99)


class BenchError(Exception):
    """The harness could not measure (not: the target was missed)."""


@dataclass(frozen=True)
class Params:
    """What one run measures."""

    requests: int = 600
    throughput_requests: int = 2400
    concurrency: int = 16
    latency_ms: float = 20.0
    warmup: int = 30
    profile_requests: int = 200
    max_seconds: float = 100.0
    output: Path = DEFAULT_OUTPUT


@dataclass(frozen=True)
class LatencyRow:
    """One percentile of both paths, in ms."""

    label: str
    direct_ms: float
    service_ms: float

    @property
    def added_ms(self) -> float:
        """What the service adds at this percentile."""
        return self.service_ms - self.direct_ms

    @property
    def ratio(self) -> float:
        """Service over direct."""
        return self.service_ms / self.direct_ms if self.direct_ms else float("nan")


@dataclass(frozen=True)
class ThroughputRow:
    """One path at saturation: requests, wall time and the CPU its server spent."""

    path: str
    requests: int
    elapsed_ns: int
    server_cpu_ns: int | None

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / (self.elapsed_ns / 1e9) if self.elapsed_ns else 0.0

    @property
    def cpu_ms_per_request(self) -> float | None:
        """CPU of the process that answered the client, per request."""
        if self.server_cpu_ns is None or not self.requests:
            return None
        return self.server_cpu_ns / 1e6 / self.requests


@dataclass(frozen=True)
class Hotspot:
    """Own (exclusive) time of one function or package, per profiled request."""

    name: str
    us_per_request: float
    share: float


@dataclass(frozen=True)
class Profile:
    """Where the in-process service spends its own time."""

    requests: int
    packages: list[Hotspot]
    functions: list[Hotspot]


@dataclass(frozen=True)
class Results:
    """Everything one run measured."""

    started: datetime
    params: Params
    pairs: int
    latency: list[LatencyRow]
    paired_median_added_ms: float
    #: CPU of the service process per answer during the latency loop, in ms.
    service_cpu_ms_at_c1: float | None
    throughput: list[ThroughputRow]
    profile: Profile | None
    seconds: float


def percentile(samples: Sequence[int], q: float) -> int:
    """Nearest-rank percentile `q` (0-100] of `samples`."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = min(len(ordered), max(1, math.ceil(len(ordered) * q / 100)))
    return ordered[rank - 1]


def build_latency_rows(direct_ns: Sequence[int], service_ns: Sequence[int]) -> list[LatencyRow]:
    """p50/p90/p99 of both paths, in ms."""
    return [
        LatencyRow(f"p{q}", percentile(direct_ns, q) / 1e6, percentile(service_ns, q) / 1e6)
        for q in PERCENTILES
    ]


def build_paired_median(direct_ns: Sequence[int], service_ns: Sequence[int]) -> float:
    """Median of service - direct over pairs sent back to back, in ms (robust to drift)."""
    diffs = [s - d for d, s in zip(direct_ns, service_ns, strict=True)]
    return percentile(diffs, 50) / 1e6


def assess_target(rows: Sequence[LatencyRow]) -> dict[str, tuple[float, float, bool]]:
    """Each target, as (limit ms, measured added ms, met)."""
    added = {row.label: row.added_ms for row in rows}
    return {
        label: (limit, added[label], added[label] <= limit)
        for label, limit in (("p50", TARGET_P50_MS), ("p99", TARGET_P99_MS))
    }
