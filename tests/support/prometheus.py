"""A throwaway Prometheus for tests: the rehearsal component `rehearsal.prometheus`."""

from __future__ import annotations

from rehearsal.prometheus import (
    PROMETHEUS,
    PROMTOOL,
    PromSample,
    build_config,
    fetch_query,
    run_prometheus,
    wait_for,
)

__all__ = [
    "PROMETHEUS",
    "PROMTOOL",
    "PromSample",
    "build_config",
    "fetch_query",
    "run_prometheus",
    "wait_for",
]
