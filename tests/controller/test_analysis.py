"""Canary analysis: the PromQL it runs and the verdict `assess` gives, as tables."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from api.v1alpha1 import Analysis, MetricCheck
from controller.analysis import (
    FAILURE_OUTCOMES,
    Assessment,
    Measurement,
    Verdict,
    VersionSample,
    assess,
    build_check_query,
    build_queries,
    build_sample,
)
from service.answering.outcome import Outcome
from service.telemetry.metrics import Metrics

# --- queries ----------------------------------------------------------------------------------

SELECTOR = 'prompt="policy-qa",version="1.1.0"'


def test_queries_for_one_version() -> None:
    assert build_queries("policy-qa", "1.1.0", "1m") == {
        # a 422 (outcome "invalid") is the caller's fault: not a request of the version's
        "requests": (
            f'sum(increase(promptrollouts_requests_total{{{SELECTOR},outcome!="invalid"}}[1m]))'
        ),
        "errors": (
            f"sum(increase(promptrollouts_requests_total{{{SELECTOR},"
            'outcome=~"unavailable|rate_limited|rejected|invalid_output|error"}[1m]))'
        ),
        "p95_ms": (
            "1000 * histogram_quantile(0.95, sum by (le) ("
            f"rate(promptrollouts_request_duration_seconds_bucket{{{SELECTOR}}}[1m])))"
        ),
    }


VERSIONS = [
    ("release", "1.1.0"),
    ("pre-release", "1.2.0-rc.1"),
    ("build-metadata", "1.2.0+build.7"),
    ("pre-release-and-build", "2.0.0-alpha-1.beta+sha.5114f85"),
]


@pytest.mark.parametrize("version", [c[1] for c in VERSIONS], ids=[c[0] for c in VERSIONS])
def test_version_is_matched_exactly_and_verbatim(version: str) -> None:
    # An equality matcher takes the string as is: no regex metacharacters to escape,
    # and "-", "+" and "." in a semver must arrive unchanged.
    for query in build_queries("policy-qa", version, "5m").values():
        assert f'version="{version}"' in query
        assert "version=~" not in query
        assert "[5m]" in query


def test_error_outcomes_are_real_outcomes_and_not_the_successful_ones() -> None:
    outcomes = {o.value for o in Outcome}
    assert set(FAILURE_OUTCOMES) <= outcomes
    assert not {"answered", "fallback", "unknown", "refused", "invalid"} & set(FAILURE_OUTCOMES)
    # An answer that broke the version's output contract is the version's failure.
    assert Outcome.INVALID_OUTPUT.value in FAILURE_OUTCOMES


def test_queried_metrics_and_labels_exist_in_the_service() -> None:
    metrics = Metrics()
    metrics.requests.labels("policy-qa", "1.1.0", "answered").inc()
    metrics.request_duration.labels("policy-qa", "1.1.0").observe(0.2)
    labels = {
        sample.name: set(sample.labels)
        for family in metrics.registry.collect()
        for sample in family.samples
    }
    assert labels["promptrollouts_requests_total"] == {"prompt", "version", "outcome"}
    assert labels["promptrollouts_request_duration_seconds_bucket"] == {"prompt", "version", "le"}
    queries = build_queries("policy-qa", "1.1.0", "1m")
    assert "promptrollouts_requests_total{" in queries["requests"]
    assert "promptrollouts_request_duration_seconds_bucket{" in queries["p95_ms"]


def test_check_query_placeholders() -> None:
    template = 'avg_over_time(x{prompt="{{prompt}}",version="{{version}}"}[{{window}}]) > {{other}}'
    assert build_check_query(template, "policy-qa", "1.1.0", "2m") == (
        'avg_over_time(x{prompt="policy-qa",version="1.1.0"}[2m]) > {{other}}'
    )


# --- assess -----------------------------------------------------------------------------------

ANALYSIS = Analysis(min_requests=20, max_error_rate=0.05, max_p95_latency_ms=4000)
RELATIVE = ANALYSIS.model_copy(
    update={"max_error_rate_increase": 0.02, "max_p95_latency_ratio": 1.5}
)
CHECKS = ANALYSIS.model_copy(
    update={
        "checks": [
            MetricCheck(name="citation_rate", query="q1", min=0.8),
            MetricCheck(name="cost_usd", query="q2", max=0.01),
        ]
    }
)

HEALTHY = VersionSample(requests=100, errors=1, p95_ms=1000)


def sample(
    requests: float | None = 100, errors: float | None = 1, p95: float | None = 1000
) -> VersionSample:
    return VersionSample(requests=requests, errors=errors, p95_ms=p95)


ASSESS = [
    # (id, analysis, measurement, verdict, reason fragments)
    ("healthy", ANALYSIS, Measurement(canary=HEALTHY), Verdict.SUCCESSFUL, ["all checks passed"]),
    (
        "prometheus-error",
        ANALYSIS,
        Measurement(error="connection refused"),
        Verdict.ERROR,
        ["prometheus: connection refused"],
    ),
    (
        "error-wins-over-data",
        ANALYSIS,
        Measurement(canary=sample(errors=100), error="timeout"),
        Verdict.ERROR,
        ["prometheus: timeout"],
    ),
    (
        "no-canary-sample",
        ANALYSIS,
        Measurement(),
        Verdict.INCONCLUSIVE,
        ["0 requests in the window, fewer than minRequests 20"],
    ),
    (
        "no-request-data",
        ANALYSIS,
        Measurement(canary=sample(requests=None, errors=None, p95=None)),
        Verdict.INCONCLUSIVE,
        ["0 requests"],
    ),
    (
        "below-min-requests",
        ANALYSIS,
        Measurement(canary=sample(requests=19, errors=0)),
        Verdict.INCONCLUSIVE,
        ["19 requests in the window, fewer than minRequests 20"],
    ),
    (
        "below-min-requests-all-errors-is-not-a-failure",
        ANALYSIS,
        Measurement(canary=sample(requests=19, errors=19, p95=60_000)),
        Verdict.INCONCLUSIVE,
        ["fewer than minRequests"],
    ),
    (
        "exactly-min-requests-counts",
        ANALYSIS,
        Measurement(canary=sample(requests=20, errors=0)),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "error-rate-above",
        ANALYSIS,
        Measurement(canary=sample(requests=100, errors=6)),
        Verdict.FAILED,
        ["error rate 0.0600 > maxErrorRate 0.05"],
    ),
    (
        "error-rate-at-threshold-passes",
        ANALYSIS,
        Measurement(canary=sample(requests=100, errors=5)),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "error-rate-at-threshold-passes-small-counts",
        ANALYSIS,
        Measurement(canary=sample(requests=20, errors=1)),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "p95-above",
        ANALYSIS,
        Measurement(canary=sample(p95=4001)),
        Verdict.FAILED,
        ["p95 latency 4001 ms > maxP95LatencyMs 4000"],
    ),
    (
        "p95-at-threshold-passes",
        ANALYSIS,
        Measurement(canary=sample(p95=4000)),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "missing-p95-with-enough-requests",
        ANALYSIS,
        Measurement(canary=sample(p95=None)),
        Verdict.INCONCLUSIVE,
        ["no data for p95 latency"],
    ),
    (
        "missing-p95-does-not-hide-a-failure",
        ANALYSIS,
        Measurement(canary=sample(errors=50, p95=None)),
        Verdict.FAILED,
        ["error rate 0.5000"],
    ),
    (
        "both-absolute-failures-listed",
        ANALYSIS,
        Measurement(canary=sample(errors=10, p95=9000)),
        Verdict.FAILED,
        ["error rate 0.1000 > maxErrorRate", "p95 latency 9000 ms > maxP95LatencyMs"],
    ),
    # relative thresholds
    (
        "relative-error-increase-above",
        RELATIVE,
        Measurement(canary=sample(errors=4), stable=sample(errors=1)),
        Verdict.FAILED,
        ["error rate 0.0300 above stable > maxErrorRateIncrease 0.02"],
    ),
    (
        "relative-error-increase-within",
        RELATIVE,
        Measurement(canary=sample(errors=3), stable=sample(errors=1)),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "relative-latency-ratio-above",
        RELATIVE,
        Measurement(canary=sample(p95=1600), stable=sample(p95=1000)),
        Verdict.FAILED,
        ["p95 latency 1.60x stable > maxP95LatencyRatio 1.5"],
    ),
    (
        "relative-latency-ratio-at-threshold-passes",
        RELATIVE,
        Measurement(canary=sample(p95=1500), stable=sample(p95=1000)),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "relative-both-listed",
        RELATIVE,
        Measurement(canary=sample(errors=4, p95=1600), stable=sample(errors=1, p95=1000)),
        Verdict.FAILED,
        ["maxErrorRateIncrease", "maxP95LatencyRatio"],
    ),
    (
        "relative-ignored-without-stable",
        RELATIVE,
        Measurement(canary=sample(errors=4, p95=3000)),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "relative-ignored-with-too-few-stable-requests",
        RELATIVE,
        Measurement(
            canary=sample(errors=4, p95=3000), stable=sample(requests=19, errors=0, p95=100)
        ),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "relative-ignored-when-stable-has-no-data",
        RELATIVE,
        Measurement(
            canary=sample(errors=4, p95=3000), stable=sample(requests=None, errors=None, p95=None)
        ),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "latency-ratio-ignored-when-stable-p95-is-zero",
        RELATIVE,
        Measurement(canary=sample(p95=3000), stable=sample(errors=1, p95=0)),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "relative-not-configured-ignores-stable",
        ANALYSIS,
        Measurement(canary=sample(errors=4, p95=3000), stable=sample(errors=0, p95=100)),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "absolute-still-applies-with-stable",
        RELATIVE,
        Measurement(canary=sample(errors=10), stable=sample(errors=9)),
        Verdict.FAILED,
        ["error rate 0.1000 > maxErrorRate 0.05"],
    ),
    # custom checks
    (
        "checks-within-bounds",
        CHECKS,
        Measurement(canary=HEALTHY, checks={"citation_rate": 0.9, "cost_usd": 0.005}),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "checks-at-bounds-pass",
        CHECKS,
        Measurement(canary=HEALTHY, checks={"citation_rate": 0.8, "cost_usd": 0.01}),
        Verdict.SUCCESSFUL,
        [],
    ),
    (
        "check-below-min",
        CHECKS,
        Measurement(canary=HEALTHY, checks={"citation_rate": 0.5, "cost_usd": 0.005}),
        Verdict.FAILED,
        ["check citation_rate = 0.5 < min 0.8"],
    ),
    (
        "check-above-max",
        CHECKS,
        Measurement(canary=HEALTHY, checks={"citation_rate": 0.9, "cost_usd": 0.02}),
        Verdict.FAILED,
        ["check cost_usd = 0.02 > max 0.01"],
    ),
    (
        "check-without-data",
        CHECKS,
        Measurement(canary=HEALTHY, checks={"citation_rate": None, "cost_usd": 0.005}),
        Verdict.INCONCLUSIVE,
        ["no data for citation_rate"],
    ),
    (
        "p95-and-check-without-data",
        CHECKS,
        Measurement(canary=sample(p95=None), checks={"citation_rate": None, "cost_usd": None}),
        Verdict.INCONCLUSIVE,
        ["no data for p95 latency, citation_rate, cost_usd"],
    ),
    (
        "all-kinds-of-failure-listed",
        CHECKS.model_copy(update={"max_error_rate_increase": 0.0, "max_p95_latency_ratio": 1.0}),
        Measurement(
            canary=sample(errors=10, p95=5000),
            stable=sample(errors=0, p95=1000),
            checks={"citation_rate": 0.1, "cost_usd": 1.0},
        ),
        Verdict.FAILED,
        [
            "maxErrorRate 0.05",
            "maxP95LatencyMs 4000",
            "maxErrorRateIncrease",
            "maxP95LatencyRatio",
            "check citation_rate",
            "check cost_usd",
        ],
    ),
]


@pytest.mark.parametrize(
    ("analysis", "measurement", "verdict", "fragments"),
    [c[1:] for c in ASSESS],
    ids=[c[0] for c in ASSESS],
)
def test_assess(
    analysis: Analysis, measurement: Measurement, verdict: Verdict, fragments: list[str]
) -> None:
    assessment = assess(analysis, measurement)
    assert assessment.verdict is verdict
    assert assessment.measurement is measurement
    if verdict is Verdict.FAILED:
        # one reason per broken rule, in the order the rules are listed
        assert len(assessment.reasons) == len(fragments)
        for reason, fragment in zip(assessment.reasons, fragments, strict=True):
            assert fragment in reason
    else:
        assert len(assessment.reasons) == 1
        for fragment in fragments:
            assert fragment in assessment.reasons[0]


ERROR_RATES = [
    ("no-requests", VersionSample(requests=0, errors=0, p95_ms=None), None),
    ("no-request-data", VersionSample(requests=None, errors=None, p95_ms=None), None),
    ("no-error-data", VersionSample(requests=10, errors=None, p95_ms=None), None),
    ("some-errors", VersionSample(requests=40, errors=2, p95_ms=None), 0.05),
    ("no-errors", VersionSample(requests=40, errors=0, p95_ms=None), 0.0),
]


@pytest.mark.parametrize(
    ("sample", "rate"), [c[1:] for c in ERROR_RATES], ids=[c[0] for c in ERROR_RATES]
)
def test_error_rate(sample: VersionSample, rate: float | None) -> None:
    assert sample.error_rate == rate


SAMPLES = [
    # (id, requests, errors as queried, errors kept, error rate)
    ("traffic-no-error-series-is-zero-errors", 40.0, None, 0.0, 0.0),
    ("traffic-zero-errors", 40.0, 0.0, 0.0, 0.0),
    ("traffic-some-errors", 40.0, 2.0, 2.0, 0.05),
    ("no-traffic-no-error-series", 0.0, None, None, None),
    ("no-traffic-zero-errors", 0.0, 0.0, 0.0, None),
    ("no-request-series-no-error-series", None, None, None, None),
    ("no-request-series-errors-kept", None, 3.0, 3.0, None),
    ("no-traffic-errors-kept", 0.0, 3.0, 3.0, None),
]


@pytest.mark.parametrize(
    ("requests", "errors", "kept", "rate"), [c[1:] for c in SAMPLES], ids=[c[0] for c in SAMPLES]
)
def test_build_sample(
    requests: float | None, errors: float | None, kept: float | None, rate: float | None
) -> None:
    built = build_sample(requests, errors, 900.0)
    assert built == VersionSample(requests=requests, errors=kept, p95_ms=900.0)
    assert built.error_rate == rate


# --- to_status --------------------------------------------------------------------------------

AT = datetime(2026, 11, 25, 12, 0, 10, tzinfo=UTC)
AT_TEXT = "2026-11-25T12:00:10Z"


def test_to_status_shape() -> None:
    queries = {f"canary.{k}": v for k, v in build_queries("policy-qa", "1.1.0", "1m").items()}
    measurement = Measurement(
        canary=VersionSample(requests=120.0, errors=3.0, p95_ms=1234.5678912),
        stable=VersionSample(requests=1000.0, errors=10.0, p95_ms=math.nan),
        checks={"citation_rate": 0.91, "cost_usd": math.nan, "missing": None},
        queries=queries,
    )
    status = Assessment(Verdict.FAILED, ("a", "b"), measurement).to_status(AT)
    assert status == {
        "time": AT_TEXT,
        "mode": "live",
        "verdict": "Failed",
        "reasons": ["a", "b"],
        "values": {
            "canary": {"requests": 120.0, "errorRate": 0.025, "p95LatencyMs": 1234.567891},
            "stable": {"requests": 1000.0, "errorRate": 0.01, "p95LatencyMs": None},
            "checks": {"citation_rate": 0.91, "cost_usd": None, "missing": None},
        },
        "queries": queries,
    }


def test_to_status_of_an_error() -> None:
    measurement = Measurement(queries={"canary.requests": "q"}, error="HTTP 503")
    status = assess(ANALYSIS, measurement).to_status(AT)
    assert status == {
        "time": AT_TEXT,
        "mode": "live",
        "verdict": "Error",
        "reasons": ["prometheus: HTTP 503"],
        "values": {},
        "queries": {"canary.requests": "q"},
        "error": "HTTP 503",
    }


def test_to_status_is_plain_json() -> None:
    measurement = Measurement(canary=HEALTHY, stable=HEALTHY, checks={"c": 1.0})
    status: dict[str, Any] = assess(ANALYSIS, measurement).to_status(AT)
    assert json.loads(json.dumps(status, allow_nan=False)) == status
