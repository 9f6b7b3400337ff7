"""Histogram buckets shared by the metric families (seconds)."""

from __future__ import annotations

__all__ = ["LATENCY_BUCKETS"]

#: Request and call latencies: 10 ms to 60 s.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
