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
    "Goal",
    "Hotspot",
    "LatencyRow",
    "Params",
    "Profile",
    "Results",
    "Scenario",
    "ThroughputRow",
    "assess_goals",
    "assess_target",
    "build_latency_rows",
    "build_paired_median",
    "percentile",
]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks.md"
#: The goals of issue 15 (one worker, 50 ms upstream): added latency at concurrency 1,
#: throughput and p99 at 64 connections, service CPU per answer.
TARGET_P50_MS = 1.0
TARGET_P99_MS = 3.0
GOAL_UPSTREAM_MS = 50.0
GOAL_CONCURRENCY = 64
GOAL_RPS = 670.0
GOAL_P99_AT_64_MS = 100.0
GOAL_CPU_MS = 0.8
GOAL_RSS_MB = 300.0
GOAL_COLD_START_S = 2.0
PERCENTILES = (50, 90, 99)


class BenchError(Exception):
    """The harness could not measure (not: the target was missed)."""


@dataclass(frozen=True)
class Params:
    """What one run measures."""

    #: Latency pairs at concurrency 1, per upstream latency.
    requests: int = 300
    #: Requests per path at each concurrency, per upstream latency.
    throughput_requests: int = 1280
    concurrency: tuple[int, ...] = (16, 64)
    latency_ms: tuple[float, ...] = (20.0, 50.0)
    warmup: int = 30
    profile_requests: int = 200
    #: Collection sizes of the in-process retrieval measurement (bench.retrieval); () skips.
    retrieval_passages: tuple[int, ...] = (10_000, 100_000)
    #: Start the shipped service with the embedded model (bench.embedded).
    embedded: bool = True
    #: Time cap of the measured phases of one upstream latency.
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
    concurrency: int = 0
    #: Per-request wall time percentiles at this concurrency, in ms.
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    #: CPU of the load client (the bench process) over the same rounds.
    client_cpu_ns: int | None = None

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

    @property
    def client_cpu_ms_per_request(self) -> float | None:
        """CPU of the load client per request."""
        if self.client_cpu_ns is None or not self.requests:
            return None
        return self.client_cpu_ns / 1e6 / self.requests


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
class Scenario:
    """Both paths against one upstream latency: concurrency 1 and each saturation level."""

    latency_ms: float
    pairs: int
    latency: list[LatencyRow]
    paired_median_added_ms: float
    #: CPU of the service process per answer during the latency loop, in ms.
    service_cpu_ms_at_c1: float | None
    #: direct and service rows, for each concurrency in order.
    throughput: list[ThroughputRow]
    #: Resident memory of the service after the run's first answers, in MB.
    service_rss_mb: float | None = None
    #: Seconds from starting the service process to its first 200 on /readyz.
    cold_start_seconds: float | None = None


@dataclass(frozen=True)
class Results:
    """Everything one run measured."""

    started: datetime
    params: Params
    scenarios: list[Scenario]
    #: In-process profiles, by concurrency (1 and the highest measured).
    profiles: list[tuple[int, Profile]]
    seconds: float
    #: /proc/loadavg (1, 5 and 15 minutes) when the run started and ended; None off Linux.
    load_start: str | None = None
    load_end: str | None = None


@dataclass(frozen=True)
class Goal:
    """One goal of issue 15: what it asks, what was measured, whether it holds."""

    measure: str
    goal: str
    measured: str
    met: bool | None  # None: not measured by this run


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


def _pick(scenarios: Sequence[Scenario], latency_ms: float) -> Scenario | None:
    """The scenario at `latency_ms`, else the slowest upstream measured."""
    if not scenarios:
        return None
    exact = [s for s in scenarios if s.latency_ms == latency_ms]
    return exact[0] if exact else max(scenarios, key=lambda s: s.latency_ms)


def assess_goals(scenarios: Sequence[Scenario]) -> list[Goal]:
    """The issue's goals against the 50 ms scenario (else the slowest upstream measured)."""
    chosen = _pick(scenarios, GOAL_UPSTREAM_MS)
    if chosen is None:
        return []
    added = {row.label: row.added_ms for row in chosen.latency}
    goals = [
        Goal(
            f"added latency {label}, concurrency 1",
            f"≤ {limit:g} ms",
            f"{added[label]:.2f} ms",
            added[label] <= limit,
        )
        for label, limit in (("p50", TARGET_P50_MS), ("p99", TARGET_P99_MS))
    ]
    top = [r for r in chosen.throughput if r.path == "service"]
    at = next((r for r in top if r.concurrency == GOAL_CONCURRENCY), top[-1] if top else None)
    if at is not None:
        goals.append(
            Goal(
                f"throughput, {at.concurrency} connections",
                f"≥ {GOAL_RPS:g} req/s",
                f"{at.rps:.0f} req/s",
                at.rps >= GOAL_RPS,
            )
        )
        goals.append(
            Goal(
                f"p99, {at.concurrency} connections",
                f"≤ {GOAL_P99_AT_64_MS:g} ms",
                f"{at.p99_ms:.0f} ms",
                at.p99_ms <= GOAL_P99_AT_64_MS,
            )
        )
    cpus = [
        c
        for c in (chosen.service_cpu_ms_at_c1, at.cpu_ms_per_request if at else None)
        if c is not None
    ]
    goals.append(
        Goal(
            "service CPU per answer (concurrency 1 / saturation)",
            f"≤ {GOAL_CPU_MS:g} ms",
            " / ".join(f"{c:.2f} ms" for c in cpus) or "n/a",
            bool(cpus) and max(cpus) <= GOAL_CPU_MS if cpus else None,
        )
    )
    rss, cold = chosen.service_rss_mb, chosen.cold_start_seconds
    goals.append(
        Goal(
            "RSS after the first answers (retrieval-free bench service)",
            f"≤ {GOAL_RSS_MB:g} MB",
            "n/a" if rss is None else f"{rss:.0f} MB",
            None if rss is None else rss <= GOAL_RSS_MB,
        )
    )
    goals.append(
        Goal(
            "cold start to ready (bench service)",
            f"≤ {GOAL_COLD_START_S:g} s",
            "n/a" if cold is None else f"{cold:.2f} s",
            None if cold is None else cold <= GOAL_COLD_START_S,
        )
    )
    return goals


def assess_target(rows: Sequence[LatencyRow]) -> dict[str, tuple[float, float, bool]]:
    """Each target, as (limit ms, measured added ms, met)."""
    added = {row.label: row.added_ms for row in rows}
    return {
        label: (limit, added[label], added[label] <= limit)
        for label, limit in (("p50", TARGET_P50_MS), ("p99", TARGET_P99_MS))
    }
