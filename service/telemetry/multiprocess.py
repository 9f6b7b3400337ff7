"""Metrics of several worker processes (``WEB_CONCURRENCY`` > 1), added up at each scrape.

prometheus-client's multi-process mode: when ``PROMETHEUS_MULTIPROC_DIR`` is set before
prometheus-client is imported (:mod:`service.telemetry.multiprocess_env`), every worker
writes its values to memory-mapped files of its own in that folder, and ``/metrics``
(whichever worker answers it) reads them all through a
:class:`~prometheus_client.multiprocess.MultiProcessCollector`: counters and histograms
are summed over every worker that ran, gauges are combined by the ``multiprocess_mode``
each one declares (:mod:`service.telemetry.metrics`). A scrape never sees one worker's
share.

Values computed at scrape time (``Gauge.set_function``, custom collectors) cannot work
across processes: they would run in whichever worker answers the scrape and are never
written to the files. The service's only one, the in-flight gauge, is set on every change
instead with several workers (:class:`service.http.shedding.ReportingInflightLimiter`).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = ["clear_metric_files", "fetch_multiprocess_exposition", "mark_worker_dead"]


def clear_metric_files(folder: Path) -> int:
    """Remove a previous run's metric files (``*.db``) from `folder`; how many went.

    Counters of workers that no longer exist would otherwise be added to this run's.
    Nothing else in the folder is touched.
    """
    removed = 0
    for path in folder.glob("*.db"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def mark_worker_dead(pid: int, folder: str) -> None:
    """A worker exited: its live gauges (in flight, breaker state, weights) stop counting;
    its counters and histograms stay in the sums, as Prometheus expects of counters."""
    mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]


def fetch_multiprocess_exposition(folder: str) -> bytes:
    """The exposition of every worker's metrics, added up (reads the files in `folder`)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
