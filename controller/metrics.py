"""The controller's own Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["ControllerMetrics"]


class ControllerMetrics:
    """Rollouts by result, analysis verdicts, and the weights the controller set."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.rollouts = Counter(
            "promptrollouts_rollouts_total",
            "Rollouts that ended, by result (Promoted, RolledBack, Aborted, Superseded).",
            ["prompt", "result"],
            registry=registry,
        )
        self.analyses = Counter(
            "promptrollouts_analysis_verdicts_total",
            "Canary analyses, by verdict.",
            ["prompt", "version", "verdict"],
            registry=registry,
        )
        self.weight = Gauge(
            "promptrollouts_controller_weight_percent",
            "The traffic weight the controller set, per prompt and version.",
            ["prompt", "version"],
            registry=registry,
        )
        self.reconcile_errors = Counter(
            "promptrollouts_reconcile_errors_total",
            "Reconciliations that failed to apply (retried on the next tick).",
            ["prompt"],
            registry=registry,
        )
        self.notifications = Counter(
            "promptrollouts_notifications_total",
            "Notification events per webhook endpoint (scheme://host), by result "
            "(delivered, failed after every attempt, dropped from a full queue).",
            ["endpoint", "result"],
            registry=registry,
        )
        self.notification_failures = Counter(
            "promptrollouts_notification_attempt_failures_total",
            "Failed delivery attempts per webhook endpoint (each retry counts).",
            ["endpoint"],
            registry=registry,
        )
