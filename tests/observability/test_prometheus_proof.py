"""Proof over real HTTP: a known traffic mix, scraped by a real Prometheus, reads back exactly.

The service answers policy-qa 1.0.0 and 1.1.0 (pinned per request) with the fake model
as its upstream. Prometheus (one per session) scrapes it every second and evaluates
observability/prometheus/*.yaml. The test then asks Prometheus's HTTP API, with the query
shapes the rollout controller uses (docs/operations.md), for what was sent:

======  ==============================================  ======================
version sent                                            expected
======  ==============================================  ======================
1.1.0   6 answered, 3 unknown (off-topic)               success 1.0, errors 0
1.0.0   4 answered, 2 invalid (422), 4 unavailable      success 0.5 (4/8), errors 0.5,
        (the fake answers 503 to every chat call)       invalid 0.2 (2/10)
======  ==============================================  ======================

Users rate five of the canary's answers through ``POST /v1/feedback`` (one rating replaced)
and the quality rules (unknown, refused, fallback, uncited shares, answer length, feedback
score) read back what the service answered.

Every query runs at one instant, ``at``: a rule evaluation after the last scrape of the
traffic, so results do not drift while the module runs.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from fakemodel.app import FakeModelState, create_fake_model_app
from service.answering.outcome import Outcome
from service.app import create_app
from service.settings import ModelPrice, Settings
from tests.support.prometheus import PROMETHEUS, PromSample, fetch_query, run_prometheus, wait_for
from tests.support.servers import serve_in_thread

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = [
    ROOT / "observability" / "prometheus" / "recording-rules.yaml",
    ROOT / "observability" / "prometheus" / "alerts.yaml",
]
DASHBOARD = ROOT / "observability" / "grafana" / "prompt-rollouts.json"

PROMPT, STABLE, CANARY = "policy-qa", "1.0.0", "1.1.0"
MODELS = ("gpt-4o-mini", "gpt-4.1-nano")
PRICES = {
    "gpt-4o-mini": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.6),
    "gpt-4.1-nano": ModelPrice(input_per_mtok=0.1, output_per_mtok=0.4),
}
ON_TOPIC = (
    "Can I refund a digital item after two weeks?",
    "How long does delivery take?",
    "How do I contact support?",
)
OFF_TOPIC = "What is the capital of France?"
FAILURES = "unavailable|rate_limited|rejected|invalid_output|error"
#: The controller's window for this test (its default is 1m).
WINDOW = "1m"
REL = 1e-9


@dataclass
class Traffic:
    """What was sent, as the service reported it, and where Prometheus reads it back."""

    prometheus: str
    service: str
    at: float = 0.0
    sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    cost: Counter[str] = field(default_factory=Counter)
    tokens: Counter[str] = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)
    #: Model answers (answered, fallback) per version: their lengths, and how many cite nothing.
    lengths: dict[str, list[int]] = field(default_factory=dict)
    uncited: Counter[str] = field(default_factory=Counter)

    def query(self, expr: str) -> list[PromSample]:
        return fetch_query(self.prometheus, expr, self.at)

    def by_version(self, expr: str) -> dict[str, float]:
        return {
            labels["version"]: value
            for labels, value in self.query(expr)
            if labels.get("prompt", PROMPT) == PROMPT  # the other shipped prompts idle
        }

    def scalar(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, (expr, result)
        return result[0][1]

    def requests(self, version: str) -> int:
        return sum(n for (v, _), n in self.sent.items() if v == version)


def _settings(model_url: str) -> Settings:
    return Settings(
        prompts_dir=ROOT / "prompts",
        corpus_dir=ROOT / "data" / "policies",
        qdrant_path=":memory:",
        qdrant_url=None,
        model_base_url=f"{model_url}/v1",
        model_api_key="sk-test-key",
        embedding_base_url=None,
        model_prices=PRICES,
        # Failures fast and final: two quick attempts, a breaker that stays closed.
        model_max_attempts=2,
        model_backoff_base_seconds=0.01,
        model_backoff_max_seconds=0.02,
        breaker_consecutive_failures=1000,
        breaker_min_calls=1000,
    )


def _send(
    client: httpx.Client,
    traffic: Traffic,
    version: str,
    question: str,
    expect: Outcome,
    **extra: Any,
) -> dict[str, Any]:
    body = {"prompt": PROMPT, "version": version, "question": question} | extra
    response = client.post("/v1/answers", json=body)
    payload = response.json()
    # Problem bodies carry the outcome for model errors only; a 422 is invalid.
    outcome = str(payload.get("outcome") or ("invalid" if response.status_code == 422 else ""))
    assert outcome == expect.value, (version, question, response.status_code, payload)
    traffic.sent[version, outcome] += 1
    if response.status_code == 200:
        traffic.cost[version] += payload["usage"]["cost_usd"]
        traffic.tokens["input"] += payload["usage"]["input_tokens"]
        traffic.tokens["output"] += payload["usage"]["output_tokens"]
        if outcome in ("answered", "fallback"):
            traffic.lengths.setdefault(version, []).append(len(payload["answer"]))
            traffic.uncited[version] += not payload["citations"]
    return dict(payload)


#: The canary's ratings, in order (answer index, score): the first answer is rated twice,
#: so its first rating (1 → normalised 1) is retracted and replaced (-1 → 0).
RATINGS = ((0, 1.0), (1, 1.0), (2, -1.0), (3, 0.0), (6, 0.5), (0, -1.0))
#: Rated answers 5; normalised scores 1 + 1 + 0 + 0.5 + 0.75 + 0 = 3.25; retracted 1.
FEEDBACK = {"count": 5.0, "score": 3.25, "retracted": 1.0, "mean": (3.25 - 1.0) / 5}


def _rate(client: httpx.Client, answers: list[dict[str, Any]]) -> None:
    for index, score in RATINGS:
        body = {"request_id": answers[index]["request_id"], "score": score}
        response = client.post("/v1/feedback", json=body)
        assert response.status_code == 202, response.text


def _drive(traffic: Traffic, model_url: str) -> None:
    """The known mix (module docstring), sent one request at a time."""
    with httpx.Client(base_url=traffic.service, timeout=30) as client:
        canary = [
            _send(client, traffic, CANARY, ON_TOPIC[i % 3], Outcome.ANSWERED) for i in range(6)
        ]
        canary += [_send(client, traffic, CANARY, OFF_TOPIC, Outcome.UNKNOWN) for _ in range(3)]
        _rate(client, canary)
        for i in range(4):
            _send(client, traffic, STABLE, ON_TOPIC[i % 3], Outcome.ANSWERED)
        for _ in range(2):
            _send(client, traffic, STABLE, ON_TOPIC[0], Outcome.INVALID, variables={"tone": "rude"})
        faults = httpx.post(
            f"{model_url}/admin/faults", json={"status": 503, "endpoints": ["chat"]}
        )
        faults.raise_for_status()
        try:
            for i in range(4):
                _send(client, traffic, STABLE, ON_TOPIC[i % 3], Outcome.UNAVAILABLE)
        finally:
            httpx.delete(f"{model_url}/admin/faults").raise_for_status()


def _settle(traffic: Traffic) -> float:
    """An instant after which every rule has seen the traffic's last scrape."""
    total = sum(traffic.sent.values())

    def scraped() -> float | None:
        counted = fetch_query(traffic.prometheus, "sum(promptrollouts_requests_total)")
        if not counted or counted[0][1] != total:
            return None
        stamps = fetch_query(traffic.prometheus, "max(timestamp(promptrollouts_requests_total))")
        return stamps[0][1]

    last_scrape = wait_for(scraped, 15, "the traffic to be scraped")

    def evaluated() -> float | None:
        rules = 'label_replace({__name__=~"prompt_version:.+"}, "rule", "$1", "__name__", "(.+)")'
        stamps = [value for _, value in fetch_query(traffic.prometheus, f"timestamp({rules})")]
        # One full evaluation interval after the scrape, so no rule ran mid-append.
        return max(stamps) if stamps and min(stamps) >= last_scrape + 1 else None

    return wait_for(evaluated, 15, "the rules to evaluate the scraped traffic")


@pytest.fixture(scope="module")
def traffic() -> Iterator[Traffic]:
    if PROMETHEUS is None:
        print("SKIP: /usr/bin/prometheus is not installed (run `make system-deps`)")
        pytest.skip("prometheus is not installed (run `make system-deps`)")
    started = time.monotonic()
    with serve_in_thread(create_fake_model_app(FakeModelState())) as model_url:
        app = create_app(_settings(model_url))
        with serve_in_thread(app) as service_url:
            service_up = time.monotonic()
            with run_prometheus([service_url], RULE_FILES) as prometheus:
                traffic = Traffic(prometheus=prometheus, service=service_url)
                first_scrape = time.monotonic()
                _drive(traffic, model_url)
                sent = time.monotonic()
                traffic.at = _settle(traffic)
                traffic.timings = {
                    "service_start_s": service_up - started,
                    "prometheus_first_scrape_s": first_scrape - service_up,
                    "traffic_s": sent - first_scrape,
                    "scrape_and_rules_s": time.monotonic() - sent,
                }
                yield traffic


# --- raw counters: exact ----------------------------------------------------------------


def test_request_counts_per_version_and_outcome_are_what_was_sent(traffic: Traffic) -> None:
    counted = {
        (labels["version"], labels["outcome"]): value
        for labels, value in traffic.query(f'promptrollouts_requests_total{{prompt="{PROMPT}"}}')
    }
    expected = {
        (version, outcome.value): float(traffic.sent[version, outcome.value])
        for version in (STABLE, CANARY)
        for outcome in Outcome
    }
    assert counted == expected
    assert traffic.sent == {
        (CANARY, "answered"): 6,
        (CANARY, "unknown"): 3,
        (STABLE, "answered"): 4,
        (STABLE, "invalid"): 2,
        (STABLE, "unavailable"): 4,
    }


def test_upstream_calls_retries_and_tokens_are_what_the_service_reported(
    traffic: Traffic,
) -> None:
    statuses = {
        labels["status"]: value
        for labels, value in traffic.query(
            'sum by (status) (promptrollouts_upstream_requests_total{model="gpt-4o-mini"})'
        )
    }
    # 10 answers; 4 unavailable requests x MODEL_MAX_ATTEMPTS (2) answered 503.
    assert statuses == {"200": 10.0, "503": 8.0}
    assert traffic.scalar("sum(promptrollouts_upstream_retries_total)") == 4.0
    tokens = {
        labels["direction"]: value
        for labels, value in traffic.query("sum by (direction) (promptrollouts_tokens_total)")
    }
    assert tokens == {"input": traffic.tokens["input"], "output": traffic.tokens["output"]}
    breaker = traffic.scalar('max(promptrollouts_circuit_breaker_state{model="gpt-4o-mini"})')
    assert breaker == 0.0


# --- recording rules ------------------------------------------------------------------


@pytest.mark.parametrize("window", ["1m", "5m"])
def test_success_error_and_invalid_ratios_per_version(traffic: Traffic, window: str) -> None:
    def ratio(name: str) -> dict[str, float]:
        return traffic.by_version(f"prompt_version:promptrollouts_{name}:rate{window}")

    assert ratio("success_ratio") == pytest.approx({CANARY: 1.0, STABLE: 0.5}, rel=REL)
    assert ratio("error_ratio") == pytest.approx({CANARY: 0.0, STABLE: 0.5}, rel=REL)
    assert ratio("invalid_ratio") == pytest.approx({CANARY: 0.0, STABLE: 0.2}, rel=REL)
    assert ratio("empty_retrieval_ratio") == pytest.approx({CANARY: 3 / 9, STABLE: 0.0}, rel=REL)


@pytest.mark.parametrize("window", ["1m", "5m"])
def test_cost_per_request_is_the_price_table_times_the_reported_usage(
    traffic: Traffic, window: str
) -> None:
    per_request = traffic.by_version(
        f"prompt_version:promptrollouts_cost_usd_per_request:rate{window}"
    )
    expected = {v: traffic.cost[v] / traffic.requests(v) for v in (STABLE, CANARY)}
    assert all(cost > 0 for cost in expected.values())
    assert per_request == pytest.approx(expected, rel=REL)


def test_tokens_per_call_is_the_reported_usage_over_the_calls(traffic: Traffic) -> None:
    per_call = {
        labels["direction"]: value
        for labels, value in traffic.query(
            'model_direction:promptrollouts_tokens_per_call:rate1m{model="gpt-4o-mini"}'
        )
    }
    expected = {d: traffic.tokens[d] / 10 for d in ("input", "output")}
    assert per_call == pytest.approx(expected, rel=REL)


def test_latency_rules_match_the_service_histogram(traffic: Traffic) -> None:
    histograms = _service_histograms(traffic.service)
    mean = traffic.by_version("prompt_version:promptrollouts_request_duration_seconds:mean1m")
    p95 = traffic.by_version("prompt_version:promptrollouts_request_duration_seconds:p95_1m")
    for version in (STABLE, CANARY):
        buckets, total, count = histograms[version]
        assert count == traffic.requests(version)
        assert mean[version] == pytest.approx(total / count, rel=REL)
        assert p95[version] == pytest.approx(_quantile(0.95, buckets), rel=REL)


# --- quality signals --------------------------------------------------------------------


def test_feedback_counters_are_what_users_sent(traffic: Traffic) -> None:
    def counter(name: str) -> dict[str, float]:
        return traffic.by_version(f'promptrollouts_feedback_{name}{{prompt="{PROMPT}"}}')

    assert counter("total") == {CANARY: FEEDBACK["count"], STABLE: 0.0}
    assert counter("score_total") == {CANARY: FEEDBACK["score"], STABLE: 0.0}
    assert counter("score_retracted_total") == {CANARY: FEEDBACK["retracted"], STABLE: 0.0}


@pytest.mark.parametrize("window", ["1m", "5m"])
def test_quality_rules_per_version(traffic: Traffic, window: str) -> None:
    def rule(name: str) -> dict[str, float]:
        return traffic.by_version(f"prompt_version:promptrollouts_{name}{window}")

    # Shares of the answers sent: canary 3 unknown of 9; stable 4 answered (failures and
    # invalid requests are not answers).
    assert rule("unknown_ratio:rate") == pytest.approx({CANARY: 3 / 9, STABLE: 0.0}, rel=REL)
    assert rule("refused_ratio:rate") == {CANARY: 0.0, STABLE: 0.0}
    assert rule("fallback_ratio:rate") == {CANARY: 0.0, STABLE: 0.0}
    uncited = {v: traffic.uncited[v] / len(traffic.lengths[v]) for v in (STABLE, CANARY)}
    assert rule("uncited_ratio:rate") == pytest.approx(uncited, rel=REL)
    lengths = {v: sum(traffic.lengths[v]) / len(traffic.lengths[v]) for v in (STABLE, CANARY)}
    assert all(length > 0 for length in lengths.values())
    assert rule("answer_length_chars:mean") == pytest.approx(lengths, rel=REL)
    # Only the canary was rated: the stable has no mean score (no ratings), not 0.
    assert rule("feedback_score:mean") == pytest.approx({CANARY: FEEDBACK["mean"]}, rel=REL)
    rates = rule("feedback:rate")
    assert rates[STABLE] == 0.0 and rates[CANARY] > 0


# --- the controller's queries ----------------------------------------------------------


def _controller_queries(version: str, window: str) -> dict[str, str]:
    """The shapes documented in docs/operations.md, "Queries the rollout controller uses"."""
    selector = f'prompt="{PROMPT}",version="{version}"'
    return {
        "requests": (
            f'sum(increase(promptrollouts_requests_total{{{selector},outcome!="invalid"}}'
            f"[{window}]))"
        ),
        "error_rate": (
            f'(sum(increase(promptrollouts_requests_total{{{selector},outcome=~"{FAILURES}"}}'
            f"[{window}])) or vector(0))\n/\n"
            f'sum(increase(promptrollouts_requests_total{{{selector},outcome!="invalid"}}'
            f"[{window}]))"
        ),
        "p95_ms": (
            "1000 * histogram_quantile(0.95, sum by (le) ("
            f"rate(promptrollouts_request_duration_seconds_bucket{{{selector}}}[{window}])))"
        ),
    }


@pytest.mark.parametrize(
    ("version", "error_rate"), [(CANARY, 0.0), (STABLE, 0.5)], ids=["canary", "stable"]
)
def test_controller_error_rate_and_p95_of_one_version(
    traffic: Traffic, version: str, error_rate: float
) -> None:
    queries = _controller_queries(version, WINDOW)
    assert traffic.scalar(queries["error_rate"]) == pytest.approx(error_rate, rel=REL, abs=REL)
    # increase() extrapolates to the window's edges: at least what was sent, a bit more.
    countable = traffic.requests(version) - traffic.sent[version, "invalid"]
    assert countable <= traffic.scalar(queries["requests"]) <= 1.5 * countable
    buckets, _, _ = _service_histograms(traffic.service)[version]
    assert traffic.scalar(queries["p95_ms"]) == pytest.approx(
        1000 * _quantile(0.95, buckets), rel=REL
    )


def test_controller_sees_no_data_for_a_version_without_traffic(traffic: Traffic) -> None:
    queries = _controller_queries("9.9.9", WINDOW)
    assert traffic.query(queries["requests"]) == []
    assert traffic.query(queries["error_rate"]) == []  # inconclusive, not 0 and not 1


# --- everything Prometheus loaded works -----------------------------------------------


def test_every_rule_loaded_and_evaluates_without_error(traffic: Traffic) -> None:
    body = httpx.get(f"{traffic.prometheus}/api/v1/rules", timeout=10).json()
    rules = [rule for group in body["data"]["groups"] for rule in group["rules"]]
    declared = [
        rule
        for file in RULE_FILES
        for group in yaml.safe_load(file.read_text())["groups"]
        for rule in group["rules"]
    ]
    assert len(rules) == len(declared)
    broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert broken == {}
    alerts = httpx.get(f"{traffic.prometheus}/api/v1/alerts", timeout=10).json()
    assert alerts["data"]["alerts"] == []  # too little traffic to page anyone


#: Dashboard targets that may have no data in this scenario (nothing waited or was cached).
QUIET = ("rate_limit", "cache_hits")


def test_every_dashboard_query_runs_and_shows_the_traffic(traffic: Traffic) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    empty = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = (
                target["expr"]
                .replace("$prompt", PROMPT)
                .replace("$version", ".*")
                .replace("$__rate_interval", WINDOW)
            )
            if not traffic.query(expr) and not any(q in expr for q in QUIET):
                empty.append(f"{panel['title']}: {expr}")
    assert empty == []


def test_the_proof_fits_its_time_budget(traffic: Traffic) -> None:
    """The phases of the session fixture (shown with ``pytest -rP``) fit in 60 s."""
    print(json.dumps({k: round(v, 2) for k, v in traffic.timings.items()}))
    assert sum(traffic.timings.values()) < 60


# --- the service's own view, to compare with --------------------------------------------


def _service_histograms(service: str) -> dict[str, tuple[list[tuple[float, float]], float, float]]:
    """Per version: cumulative (le, count) buckets, sum and count, from the service's /metrics."""
    text = httpx.get(f"{service}/metrics", timeout=10).text
    out: dict[str, tuple[list[tuple[float, float]], float, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "promptrollouts_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.labels["prompt"] != PROMPT:  # the other shipped prompts idle
                continue
            version = sample.labels["version"]
            buckets, total, count = out.get(version, ([], 0.0, 0.0))
            if sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_sum"):
                total = sample.value
            elif sample.name.endswith("_count"):
                count = sample.value
            out[version] = (buckets, total, count)
    return out


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """histogram_quantile over cumulative buckets, as Prometheus computes it."""
    buckets = sorted(buckets)
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (cumulative - below)
        lower, below = upper, cumulative
    raise AssertionError("unreachable: the +Inf bucket holds every observation")
