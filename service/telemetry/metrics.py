"""Prometheus metrics of the service, in a registry of their own (one per app).

Every name is ``promptrollouts_*`` with its unit as a suffix; docs/observability.md
lists them. Label values come from manifests and settings only (prompt, version and
model names, outcome and status enums), never from request text, so the number of
series is bounded by the number of deployed versions and models.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values

from service.telemetry.buckets import LATENCY_BUCKETS
from service.telemetry.multiprocess import fetch_multiprocess_exposition
from service.telemetry.multiprocess_env import multiprocess_dir
from service.telemetry.shadow_metrics import ShadowMetrics
from service.telemetry.tool_metrics import ToolMetrics

__all__ = [
    "ANSWER_LENGTH_BUCKETS",
    "JUDGE_SCORE_BUCKETS",
    "LATENCY_BUCKETS",
    "Metrics",
]

#: From 10 ms to 60 s: LLM answers span three orders of magnitude.
#: Retrieval is local and fast: 1 ms to 2.5 s.
RETRIEVAL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Judge scores are 0..1: one bucket per tenth.
JUDGE_SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Answer length in characters (promptrollouts_answer_length_chars).
ANSWER_LENGTH_BUCKETS = (50, 100, 200, 400, 800, 1600, 3200, 6400)


class Metrics:
    """The service's metrics (gauges say how several workers' values combine:
    ``multiprocess_mode``, read only in multi-process mode, see multiprocess.py)."""

    def __init__(self, tenant_labels: bool = False) -> None:
        self.registry = registry = CollectorRegistry()
        #: PROMETHEUS_MULTIPROC_DIR with WEB_CONCURRENCY > 1: every worker's files, summed.
        #: (prometheus-client chose its mode at import: files only if the variable was set.)
        in_files = getattr(values.ValueClass, "_multiprocess", False)
        self.multiprocess_dir = multiprocess_dir() if in_files else None
        #: TENANT_METRICS: per-tenant series carry a `tenant` label (off: no tenant anywhere).
        self.tenant_labels = tenant_labels
        self.requests = Counter(
            "promptrollouts_requests_total",
            "Requests answered or refused, by prompt, version and outcome.",
            ["prompt", "version", "outcome"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "promptrollouts_request_duration_seconds",
            "Time to answer a request, by prompt and version.",
            ["prompt", "version"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "promptrollouts_time_to_first_token_seconds",
            "Time from a streamed request's arrival to the first answer text sent to the "
            "client, by prompt and version.",
            ["prompt", "version"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_requests = Counter(
            "promptrollouts_upstream_requests_total",
            "Attempts at a model upstream, by model and status (HTTP code or failure kind).",
            ["model", "status"],
            registry=registry,
        )
        self.upstream_retries = Counter(
            "promptrollouts_upstream_retries_total",
            "Retries of model calls, by model.",
            ["model"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            "promptrollouts_circuit_breaker_state",
            "Circuit breaker state per model: 0 closed, 1 half-open, 2 open.",
            ["model"],
            registry=registry,
            multiprocess_mode="livemax",  # each worker has its breaker: the most open one
        )
        self.upstream_throttled = Counter(
            "promptrollouts_upstream_throttled_total",
            "Upstream 429 answers (back-pressure, not breaker failures), by model.",
            ["model"],
            registry=registry,
        )
        self.rate_limit_waits = Counter(
            "promptrollouts_rate_limit_waits_total",
            "Requests that waited for rate-limit capacity, by model.",
            ["model"],
            registry=registry,
        )
        self.rate_limit_wait_seconds = Counter(
            "promptrollouts_rate_limit_wait_seconds_total",
            "Time spent waiting for rate-limit capacity, by model.",
            ["model"],
            registry=registry,
        )
        self.rate_limit_rejections = Counter(
            "promptrollouts_rate_limit_rejections_total",
            "Requests refused by a rate limit within their deadline, by model.",
            ["model"],
            registry=registry,
        )
        self.tokens = Counter(
            "promptrollouts_tokens_total",
            "Tokens sent to and received from models, by prompt, version, model and direction.",
            ["prompt", "version", "model", "direction"],
            registry=registry,
        )
        self.cost = Counter(
            "promptrollouts_cost_usd_total",
            "Model cost in US dollars, from the MODEL_PRICES table.",
            ["prompt", "version", "model"],
            registry=registry,
        )
        self.retrieval_duration = Histogram(
            "promptrollouts_retrieval_duration_seconds",
            "Time to embed a question and query the vector store, by collection.",
            ["collection"],
            buckets=RETRIEVAL_BUCKETS,
            registry=registry,
        )
        self.empty_retrievals = Counter(
            "promptrollouts_empty_retrievals_total",
            "Questions with nothing retrieved above minScore (answered without a model).",
            ["prompt", "version"],
            registry=registry,
        )
        self.injection_screened = Counter(
            "promptrollouts_injection_screened_total",
            "Instruction-like sentences kept out of prompts (screened at index or retrieval "
            "time), by collection, counted each time a retrieval returns them.",
            ["collection"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "promptrollouts_cache_hits_total",
            "Model replies served from the response cache.",
            ["prompt", "version"],
            registry=registry,
        )
        self.idempotent_replays = Counter(
            "promptrollouts_idempotent_replays_total",
            "Responses replayed for a repeated Idempotency-Key.",
            registry=registry,
        )
        self.shed_requests = Counter(
            "promptrollouts_shed_requests_total",
            "Answering requests refused with 503 because MAX_INFLIGHT were in flight.",
            registry=registry,
        )
        self.inflight_requests = Gauge(
            "promptrollouts_inflight_requests",
            "Answering requests in flight (summed over workers; each sheds above MAX_INFLIGHT).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.idempotency_save_failures = Counter(
            "promptrollouts_idempotency_save_failures_total",
            "Answers sent but not stored for their Idempotency-Key (the store failed).",
            registry=registry,
        )
        self.auth_failures = Counter(
            "promptrollouts_auth_failures_total",
            "Requests refused by authentication (missing, invalid) or permission (forbidden).",
            ["reason"],
            registry=registry,
        )
        tenant = ["tenant"] if tenant_labels else []
        self.tenant_requests = Counter(
            "promptrollouts_tenant_requests_total",
            "Authenticated API requests (by tenant with TENANT_METRICS=true).",
            tenant,
            registry=registry,
        )
        self.quota_rejections = Counter(
            "promptrollouts_tenant_quota_rejections_total",
            "Requests refused by TENANT_RPM (by tenant with TENANT_METRICS=true).",
            tenant,
            registry=registry,
        )
        self.quota_errors = Counter(
            "promptrollouts_tenant_quota_errors_total",
            "Requests let through unchecked because the quota store (Redis) failed.",
            registry=registry,
        )
        self.version_weight = Gauge(
            "promptrollouts_version_weight_percent",
            "Share of traffic each loaded version receives, in percent.",
            ["prompt", "version"],
            registry=registry,
            multiprocess_mode="livemostrecent",  # the latest weights any worker loaded
        )
        # --- Quality signals (issue 11): what answers were like, and what users thought ---
        # Labels prompt and version only (no tenant: one series per served version, created
        # at 0 by service.catalog.catalog.publish_registry).
        self.answers_uncited = Counter(
            "promptrollouts_answers_uncited_total",
            "Answers (outcome answered or fallback) that cite no retrieved passage.",
            ["prompt", "version"],
            registry=registry,
        )
        self.output_repairs = Counter(
            "promptrollouts_output_repairs_total",
            "Repair calls made because an answer broke the version's output contract.",
            ["prompt", "version"],
            registry=registry,
        )
        self.answer_length = Histogram(
            "promptrollouts_answer_length_chars",
            "Length in characters of the model's answers sent (outcome answered or fallback; "
            "the fixed empty and refusal answers are not measured).",
            ["prompt", "version"],
            buckets=ANSWER_LENGTH_BUCKETS,
            registry=registry,
        )
        self.feedback = Counter(
            "promptrollouts_feedback_total",
            "Answers rated through POST /v1/feedback (a replaced rating is not counted again).",
            ["prompt", "version"],
            registry=registry,
        )
        self.feedback_score = Counter(
            "promptrollouts_feedback_score_total",
            "Sum of normalised feedback scores (score+1)/2, each in [0, 1].",
            ["prompt", "version"],
            registry=registry,
        )
        self.feedback_score_retracted = Counter(
            "promptrollouts_feedback_score_retracted_total",
            "Normalised scores withdrawn because their rating was replaced.",
            ["prompt", "version"],
            registry=registry,
        )
        self.feedback_remember_failures = Counter(
            "promptrollouts_feedback_remember_failures_total",
            "Answers sent whose request id could not be remembered for feedback (the feedback "
            "store failed, was too slow, or too many were pending).",
            registry=registry,
        )
        # --- end of quality signals ---

        # The sampled online judge (service/answering/judge.py, docs/rollouts.md).
        self.judge_score = Histogram(
            "promptrollouts_judge_score",
            "Scores (0..1) the version's online judge gave to sampled live answers.",
            ["prompt", "version"],
            buckets=JUDGE_SCORE_BUCKETS,
            registry=registry,
        )
        self.judge_calls = Counter(
            "promptrollouts_judge_calls_total",
            "Online judge decisions per answer that could be judged, by result: scored, "
            "sampled_out, over_budget (maxPerMinute), breaker_open, error, dropped (queue full).",
            ["prompt", "version", "result"],
            registry=registry,
        )

        #: Shadow answers of canaries in a shadow step (mode="shadow"; shadow_metrics.py).
        self.shadow = ShadowMetrics(registry)
        #: Declarative HTTP tools (service/tools/, tool_metrics.py).
        tools = ToolMetrics(registry)
        self.tool_calls, self.tool_errors, self.tool_duration = (
            tools.calls,
            tools.errors,
            tools.duration,
        )

    def exposition(self) -> bytes:
        """The text a scrape of /metrics gets: this registry, or every worker's files."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        return fetch_multiprocess_exposition(self.multiprocess_dir)

    def tenant_counter(self, counter: Counter, tenant: str) -> Counter:
        """``counter`` for ``tenant``: labelled only with TENANT_METRICS=true."""
        return counter.labels(tenant) if self.tenant_labels else counter
