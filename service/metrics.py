"""Prometheus metrics of the service, in a registry of their own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["LATENCY_BUCKETS", "Metrics"]

#: From 10 ms to 60 s: LLM answers span three orders of magnitude.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


class Metrics:
    """The service's metrics. Label values come from manifests only, never from request text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "promptrollouts_requests_total",
            "Answers served, by prompt, version and outcome.",
            ["prompt", "version", "outcome"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "promptrollouts_request_duration_seconds",
            "Time to answer, by prompt and version.",
            ["prompt", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
