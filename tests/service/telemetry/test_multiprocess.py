"""Every metric of the service can be added up across workers (WEB_CONCURRENCY > 1).

prometheus-client's multi-process mode reads values from files: a custom collector, or a
gauge computed at scrape time, would be silently missing from the workers' /metrics.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from service.telemetry.metrics import Metrics


def test_the_registry_holds_only_file_backed_metrics() -> None:
    metrics = Metrics(tenant_labels=True)
    collectors = list(metrics.registry._collector_to_names)  # no public way to list them
    assert len(collectors) > 30
    for collector in collectors:
        assert isinstance(collector, Counter | Gauge | Histogram), (
            f"{collector!r} is not added up across workers: give it a multi-process path "
            "(service/telemetry/multiprocess.py)"
        )


def test_every_gauge_says_how_workers_combine() -> None:
    metrics = Metrics()
    gauges = [c for c in metrics.registry._collector_to_names if isinstance(c, Gauge)]
    modes = {gauge._name: gauge._multiprocess_mode for gauge in gauges}
    assert modes == {
        "promptrollouts_circuit_breaker_state": "livemax",
        "promptrollouts_inflight_requests": "livesum",
        "promptrollouts_version_weight_percent": "livemostrecent",
    }


def test_one_process_reads_its_own_registry() -> None:
    metrics = Metrics()
    assert metrics.multiprocess_dir is None
    metrics.idempotent_replays.inc()
    assert b"promptrollouts_idempotent_replays_total 1.0" in metrics.exposition()
