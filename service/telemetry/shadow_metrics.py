"""Metrics of shadow answers: the canary's background answers during a shadow step.

Shadow answers are measured like live ones (outcome mix, latency, tokens, cost) in
families of their own, ``promptrollouts_shadow_*``, whose every series carries the
label ``mode="shadow"``: dashboards and the controller's shadow analysis select them with
``{mode="shadow"}``, and the live families (and everything built on them: recording
rules, alerts, the live analysis) never see a shadow answer. Agreement with the live
answer is a histogram of the embedding similarity of the two answers and a counter of
same / different citations. Every label value comes from manifests or enums; series
are created at 0 for every loaded version (:func:`publish_shadow_series`).
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Histogram

from service.answering.outcome import Outcome
from service.telemetry.buckets import LATENCY_BUCKETS

__all__ = ["SIMILARITY_BUCKETS", "ShadowMetrics", "ShadowResult", "publish_shadow_series"]

#: Cosine similarity of two answers' embeddings: finer near 1, where agreement lives.
SIMILARITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0)
_MODE = "shadow"


class ShadowResult(StrEnum):
    """The ``result`` label of ``promptrollouts_shadow_calls_total``: what became of one
    request that could have been shadowed."""

    #: The shadow answer was produced and measured (whatever its outcome).
    DONE = "done"
    #: Not in the step's percent.
    SAMPLED_OUT = "sampled_out"
    #: The request carried ``X-No-Shadow: true``.
    OPTED_OUT = "opted_out"
    #: The version's ``maxShadowPerMinute`` was spent.
    OVER_BUDGET = "over_budget"
    #: SHADOW_CONCURRENCY shadow answers were already running.
    BUSY = "busy"
    #: The canary model's circuit breaker is open.
    BREAKER_OPEN = "breaker_open"
    #: The canary model's rate limit has no room left now (live requests come first).
    RATE_LIMITED = "rate_limited"
    #: The shadow answer raised (swallowed: the live answer is long gone).
    ERROR = "error"
    #: Cancelled by shutdown or by the end of the shadow step's deadline backstop.
    CANCELLED = "cancelled"


class ShadowMetrics:
    """The ``promptrollouts_shadow_*`` families, registered in the service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "promptrollouts_shadow_requests_total",
            "Shadow answers of a canary, by prompt, version and outcome (mode is always shadow).",
            ["prompt", "version", "outcome", "mode"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "promptrollouts_shadow_request_duration_seconds",
            "Time to produce a shadow answer, by prompt and version.",
            ["prompt", "version", "mode"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "promptrollouts_shadow_tokens_total",
            "Tokens of shadow answers, by prompt, version, model and direction.",
            ["prompt", "version", "model", "direction", "mode"],
            registry=registry,
        )
        self.cost = Counter(
            "promptrollouts_shadow_cost_usd_total",
            "Model cost of shadow answers in US dollars, from the MODEL_PRICES table.",
            ["prompt", "version", "model", "mode"],
            registry=registry,
        )
        self.similarity = Histogram(
            "promptrollouts_shadow_similarity",
            "Cosine similarity (embedded model) of a shadow answer and the live answer it "
            "shadowed.",
            ["prompt", "version", "mode"],
            buckets=SIMILARITY_BUCKETS,
            registry=registry,
        )
        self.citations = Counter(
            "promptrollouts_shadow_citations_total",
            "Shadow answers compared with their live answer: same citations or not.",
            ["prompt", "version", "same", "mode"],
            registry=registry,
        )
        self.calls = Counter(
            "promptrollouts_shadow_calls_total",
            "Requests a canary could have shadowed, by result: done, sampled_out, opted_out, "
            "over_budget, busy, breaker_open, rate_limited, error, cancelled.",
            ["prompt", "version", "result"],
            registry=registry,
        )


def publish_shadow_series(
    metrics: ShadowMetrics, prompt: str, version: str, models: list[str]
) -> None:
    """Create one loaded version's shadow series at 0 (rate() sees their first increase)."""
    for outcome in Outcome:
        metrics.requests.labels(prompt, version, outcome.value, _MODE)
    metrics.request_duration.labels(prompt, version, _MODE)
    metrics.similarity.labels(prompt, version, _MODE)
    for same in ("true", "false"):
        metrics.citations.labels(prompt, version, same, _MODE)
    for result in ShadowResult:
        metrics.calls.labels(prompt, version, result.value)
    for model in models:
        metrics.cost.labels(prompt, version, model, _MODE)
        for direction in ("input", "output"):
            metrics.tokens.labels(prompt, version, model, direction, _MODE)
