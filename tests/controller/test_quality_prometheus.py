"""The quality queries against a real Prometheus: they return what assess expects.

A small HTTP target on 127.0.0.1 exposes the contract's metrics (prometheus_client, our
own registry, the metric and label names of the service); a real Prometheus scrapes it
every second. Every series exists (at 0) before the first scrape, and every query of one
measurement is evaluated at one instant (as the controller does): ``increase()`` then
scales every count by the same extrapolation factor, so the rates and means assess
computes are exact while the counts themselves are only within the extrapolation.

=========  ====================================================================
version    traffic sent
=========  ====================================================================
1.1.0      40 answers (14 answered, 26 unknown), 2 invalid, 3 error;
           10 ratings, normalised sum 7.5, then 3 replaced: +1.0 new, -2.0 retracted
           (net 6.5 over 10 ratings: mean 0.65, raw 0.30); judge 0.2, 0.4, 0.6
1.0.0      100 answers (80 answered, 5 fallback, 10 unknown, 5 refused);
           20 ratings, all thumbs up (1.0 each); judge 0.9 four times
=========  ====================================================================
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from api.v1alpha1 import Analysis
from controller.analysis import Measurement, Verdict, assess
from controller.prometheus import PrometheusClient, fetch_measurement
from controller.quality import CheckVerdict
from tests.support.net import free_port
from tests.support.prometheus import PROMETHEUS, fetch_query, run_prometheus, wait_for

pytestmark = pytest.mark.integration

PROMPT, CANARY, STABLE = "policy-qa", "1.1.0", "1.0.0"
OUTCOMES = ("answered", "fallback", "unknown", "refused", "invalid", "error")
ANALYSIS = Analysis(
    min_requests=20,
    min_quality_samples=3,
    max_unknown_rate_increase=0.05,
    max_refused_rate_increase=0.5,
    min_feedback_score=-0.5,
    max_feedback_score_drop=1.0,
    min_judge_score=0.1,
    max_judge_score_drop=0.5,
)


@dataclass
class Target:
    """The scraped metrics, with the contract's names (CONTRACT-quality.md)."""

    requests: Counter
    feedback: Counter
    score: Counter
    retracted: Counter
    judge: Histogram


def _target(registry: CollectorRegistry) -> Target:
    labels = ["prompt", "version"]
    target = Target(
        requests=Counter(
            "promptrollouts_requests", "Requests.", [*labels, "outcome"], registry=registry
        ),
        feedback=Counter("promptrollouts_feedback", "Rated.", labels, registry=registry),
        score=Counter("promptrollouts_feedback_score", "Scores.", labels, registry=registry),
        retracted=Counter(
            "promptrollouts_feedback_score_retracted", "Withdrawn.", labels, registry=registry
        ),
        judge=Histogram(
            "promptrollouts_judge_score",
            "Judge scores.",
            labels,
            buckets=[i / 10 for i in range(1, 11)],
            registry=registry,
        ),
    )
    for version in (CANARY, STABLE):
        for outcome in OUTCOMES:
            target.requests.labels(PROMPT, version, outcome)
        target.feedback.labels(PROMPT, version)
        target.score.labels(PROMPT, version)
        target.retracted.labels(PROMPT, version)
        target.judge.labels(PROMPT, version)
    return target


def _send(target: Target) -> None:
    """The traffic of the module docstring, all between two scrapes (well, within one)."""
    canary = {"answered": 14, "unknown": 26, "invalid": 2, "error": 3}
    stable = {"answered": 80, "fallback": 5, "unknown": 10, "refused": 5}
    for version, mix in ((CANARY, canary), (STABLE, stable)):
        for outcome, count in mix.items():
            target.requests.labels(PROMPT, version, outcome).inc(count)
    # canary: 10 ratings summing 7.5 (normalised), then 3 of them replaced
    target.feedback.labels(PROMPT, CANARY).inc(10)
    target.score.labels(PROMPT, CANARY).inc(7.5)
    target.score.labels(PROMPT, CANARY).inc(1.0)
    target.retracted.labels(PROMPT, CANARY).inc(2.0)
    # stable: 20 ratings, all thumbs up
    target.feedback.labels(PROMPT, STABLE).inc(20)
    target.score.labels(PROMPT, STABLE).inc(20)
    for score in (0.2, 0.4, 0.6):
        target.judge.labels(PROMPT, CANARY).observe(score)
    for score in (0.9, 0.9, 0.9, 0.9):
        target.judge.labels(PROMPT, STABLE).observe(score)


@pytest.fixture(scope="module")
def measurement() -> Iterator[Measurement]:
    if PROMETHEUS is None:
        print("SKIP: /usr/bin/prometheus is not installed (run `make system-deps`)")
        pytest.skip("prometheus is not installed (run `make system-deps`)")
    registry = CollectorRegistry()
    target = _target(registry)
    port = free_port()
    server, thread = start_http_server(port, "127.0.0.1", registry)
    try:
        with run_prometheus([f"127.0.0.1:{port}"], [], scrape_interval="1s") as url:
            # The zeros were scraped (up == 1); a few more zero samples make increase()'s
            # extrapolation small. Then the traffic, and a few samples of its totals.
            time.sleep(3)
            _send(target)

            def scraped() -> bool | None:
                total = fetch_query(url, "sum(promptrollouts_requests_total)")
                return True if total and total[0][1] == 145 else None

            wait_for(scraped, 15, "the traffic to be scraped")
            time.sleep(3)

            async def measure() -> Measurement:
                async with httpx.AsyncClient() as http:
                    client = PrometheusClient(http, url)
                    return await fetch_measurement(
                        client, PROMPT, CANARY, STABLE, ANALYSIS, time.time()
                    )

            yield asyncio.run(measure())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_counts_come_back_within_the_extrapolation(measurement: Measurement) -> None:
    assert measurement.error is None
    canary, stable = measurement.canary_quality, measurement.stable_quality
    assert canary is not None and stable is not None
    assert canary.answers == pytest.approx(40, rel=0.1)
    assert canary.refused == pytest.approx(0.0)  # a series at 0 that never moved
    assert stable.answers == pytest.approx(100, rel=0.1)
    assert canary.feedback == pytest.approx(10, rel=0.1)
    assert canary.judge_count == pytest.approx(3, rel=0.1)


def test_rates_and_means_are_exact(measurement: Measurement) -> None:
    canary, stable = measurement.canary_quality, measurement.stable_quality
    assert canary is not None and stable is not None
    signal = canary.signal
    assert signal("max_unknown_rate_increase").mean == pytest.approx(26 / 40, rel=1e-9)
    assert stable.signal("max_unknown_rate_increase").mean == pytest.approx(10 / 100, rel=1e-9)
    assert stable.signal("max_refused_rate_increase").mean == pytest.approx(5 / 100, rel=1e-9)
    # the retracted arithmetic: (7.5 + 1.0 - 2.0) / 10 ratings
    assert signal("min_feedback_score").mean == pytest.approx(0.65, rel=1e-9)
    assert stable.signal("max_feedback_score_drop").mean == pytest.approx(1.0, rel=1e-9)
    assert signal("min_judge_score").mean == pytest.approx(0.4, rel=1e-9)
    # scores on bucket bounds: the squares bound is exact, 0.04 + 0.16 + 0.36 over 3
    judge = signal("min_judge_score")
    assert judge.square_total is not None
    assert judge.square_total / judge.count == pytest.approx(0.56 / 3, rel=1e-9)
    assert stable.signal("max_judge_score_drop").mean == pytest.approx(0.9, rel=1e-9)


def test_assess_reads_the_real_answers(measurement: Measurement) -> None:
    assessment = assess(ANALYSIS, measurement)
    by_field = {check.field: check for check in assessment.quality}
    assert assessment.verdict is Verdict.FAILED
    unknown = by_field["max_unknown_rate_increase"]
    assert unknown.verdict is CheckVerdict.FAILED
    assert unknown.reason.startswith(
        "unknown rate 65 % vs 10 % stable, +55 pts (max +5 pts), p < 0.001, "
    )
    feedback = by_field["min_feedback_score"]
    assert feedback.canary_value == pytest.approx(0.30, rel=1e-9)  # raw -1..1 scale
    assert feedback.verdict is CheckVerdict.PASSED
    assert by_field["max_judge_score_drop"].effect == pytest.approx(-0.5, rel=1e-9)
    # the requests denominator of the error checks still leaves out the 422s
    assert measurement.canary is not None
    assert measurement.canary.requests == pytest.approx(43, rel=0.1)
    assert measurement.canary.error_rate == pytest.approx(3 / 43, rel=1e-9)
