"""Quality checks: their PromQL, their verdicts, the line a human reads, their place in assess."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime

import httpx
import pytest

from api.v1alpha1 import Analysis
from controller.analysis import Assessment, Measurement, Verdict, VersionSample, assess
from controller.prometheus import PrometheusClient, fetch_measurement
from controller.quality import (
    CheckVerdict,
    QualitySample,
    assess_quality,
    build_quality_queries,
    build_quality_sample,
    quality_fields,
    render_p_value,
)

SELECTOR = 'prompt="policy-qa",version="1.1.0"'
ALL = Analysis(
    max_unknown_rate_increase=0.05,
    max_refused_rate_increase=0.02,
    min_feedback_score=0.0,
    max_feedback_score_drop=0.3,
    min_judge_score=0.6,
    max_judge_score_drop=0.1,
)
UNKNOWN = Analysis(max_unknown_rate_increase=0.05)

# --- queries ----------------------------------------------------------------------------------


def test_no_quality_field_no_query() -> None:
    assert quality_fields(Analysis()) == []
    assert build_quality_queries("policy-qa", "1.1.0", "1m", Analysis()) == {}


def test_queries_for_every_signal() -> None:
    queries = build_quality_queries("policy-qa", "1.1.0", "2m", ALL)
    requests = f"promptrollouts_requests_total{{{SELECTOR}"
    assert queries == {
        "answers": (
            f'sum(increase({requests},outcome=~"answered|fallback|unknown|refused"}}[2m]))'
        ),
        "unknown": f'sum(increase({requests},outcome="unknown"}}[2m]))',
        "refused": f'sum(increase({requests},outcome="refused"}}[2m]))',
        "feedback": f"sum(increase(promptrollouts_feedback_total{{{SELECTOR}}}[2m]))",
        "feedback_score": (f"sum(increase(promptrollouts_feedback_score_total{{{SELECTOR}}}[2m]))"),
        "feedback_retracted": (
            f"sum(increase(promptrollouts_feedback_score_retracted_total{{{SELECTOR}}}[2m]))"
        ),
        "judge_sum": f"sum(increase(promptrollouts_judge_score_sum{{{SELECTOR}}}[2m]))",
        "judge_count": f"sum(increase(promptrollouts_judge_score_count{{{SELECTOR}}}[2m]))",
        "judge_buckets": (
            f"sum by (le)(increase(promptrollouts_judge_score_bucket{{{SELECTOR}}}[2m]))"
        ),
    }


@pytest.mark.parametrize(
    ("field", "counts"),
    [
        ("max_unknown_rate_increase", {"answers", "unknown"}),
        ("max_refused_rate_increase", {"answers", "refused"}),
        ("min_feedback_score", {"feedback", "feedback_score", "feedback_retracted"}),
        ("max_judge_score_drop", {"judge_sum", "judge_count", "judge_buckets"}),
    ],
)
def test_only_the_counts_a_check_needs_are_queried(field: str, counts: set[str]) -> None:
    analysis = Analysis.model_validate({field: 0.1})
    assert set(build_quality_queries("p", "1.0.0", "1m", analysis)) == counts


# --- signals from counts ----------------------------------------------------------------------

SIGNALS = [
    # (id, sample, field, (total, count))
    ("rate", QualitySample(answers=100, unknown=12), "max_unknown_rate_increase", (12, 100)),
    ("no-unknown-series", QualitySample(answers=100), "max_unknown_rate_increase", (0, 100)),
    ("no-answers", QualitySample(unknown=3.0), "max_unknown_rate_increase", (0, 0)),
    (
        "nan-answers",
        QualitySample(answers=math.nan, unknown=3),
        "max_unknown_rate_increase",
        (0, 0),
    ),
    (
        "nan-unknown",
        QualitySample(answers=50, unknown=math.nan),
        "max_unknown_rate_increase",
        (0, 50),
    ),
    (
        "inf-answers",
        QualitySample(answers=math.inf, refused=1),
        "max_refused_rate_increase",
        (0, 0),
    ),
    ("negative-count", QualitySample(answers=-4, refused=1), "max_refused_rate_increase", (0, 0)),
    # increase() extrapolates: 10.4 unknown of 10.2 answers is all of them, not more
    (
        "extrapolated",
        QualitySample(answers=10.2, unknown=10.4),
        "max_unknown_rate_increase",
        (10.2, 10.2),
    ),
    (
        "feedback-net-of-retracted",
        QualitySample(feedback=10, feedback_score=8, feedback_retracted=2),
        "min_feedback_score",
        (6, 10),
    ),
    (
        "retracted-more-than-the-window-scored",
        QualitySample(feedback=4, feedback_score=1, feedback_retracted=3),
        "max_feedback_score_drop",
        (0, 4),
    ),
    (
        "no-retracted-series",
        QualitySample(feedback=4, feedback_score=3),
        "min_feedback_score",
        (3, 4),
    ),
    ("judge", QualitySample(judge_sum=7.5, judge_count=10), "min_judge_score", (7.5, 10)),
    ("judge-none", QualitySample(), "max_judge_score_drop", (0, 0)),
]


@pytest.mark.parametrize(
    ("sample", "field", "expected"), [c[1:] for c in SIGNALS], ids=[c[0] for c in SIGNALS]
)
def test_signal(sample: QualitySample, field: str, expected: tuple[float, float]) -> None:
    signal = sample.signal(field)
    assert (signal.total, signal.count) == pytest.approx(expected)


def test_build_quality_sample_keeps_known_keys() -> None:
    assert build_quality_sample({"answers": 3.0, "unknown": None, "bogus": 1.0}) == QualitySample(
        answers=3.0
    )
    built = build_quality_sample({"judge_buckets": {"+Inf": 4.0, "0.5": 1.0, "x": 9.0}})
    assert built.judge_buckets == ((0.5, 1.0), (math.inf, 4.0))
    assert build_quality_sample({"judge_buckets": {}}).judge_buckets is None
    assert build_quality_sample({"judge_buckets": 3.0}).judge_buckets is None


SQUARES = [
    # (id, buckets (le, cumulative), count, sum of squares bound)
    ("exact-at-bounds", ((0.2, 1), (0.4, 2), (0.6, 3), (math.inf, 3)), 3, 0.04 + 0.16 + 0.36),
    ("inf-bucket-is-one", ((0.5, 0), (math.inf, 2)), 2, 2.0),
    ("scaled-to-count", ((0.5, 2), (1.0, 4), (math.inf, 4)), 2, (2 * 0.25 + 2 * 1.0) / 2),
    ("non-monotonic-artefact", ((0.5, 3), (1.0, 2), (math.inf, 3)), 3, 3 * 0.25),
    ("no-observations", ((0.5, 0), (math.inf, 0)), 0, None),
    ("no-buckets", (), 5, None),
]


@pytest.mark.parametrize(
    ("buckets", "count", "squares"), [c[1:] for c in SQUARES], ids=[c[0] for c in SQUARES]
)
def test_judge_squares_from_buckets(
    buckets: tuple[tuple[float, float], ...], count: float, squares: float | None
) -> None:
    sample = QualitySample(judge_sum=count * 0.5, judge_count=count, judge_buckets=buckets)
    signal = sample.signal("min_judge_score")
    if squares is None:
        assert signal.square_total is None
    else:
        assert signal.square_total == pytest.approx(squares)


def test_buckets_make_the_judge_check_far_more_sensitive() -> None:
    # 60 scores of 0.6 vs 500 of 0.8: the [0, 1] bound alone cannot tell; the buckets can.
    canary = QualitySample(judge_sum=36, judge_count=60)
    stable = QualitySample(judge_sum=400, judge_count=500)
    analysis = Analysis(max_judge_score_drop=0.1)
    (without,) = assess_quality(analysis, canary, stable)
    bucketed = QualitySample(
        judge_sum=36, judge_count=60, judge_buckets=((0.6, 60.0), (math.inf, 60.0))
    )
    stable_bucketed = QualitySample(
        judge_sum=400, judge_count=500, judge_buckets=((0.8, 500.0), (math.inf, 500.0))
    )
    (with_buckets,) = assess_quality(analysis, bucketed, stable_bucketed)
    assert without.verdict is CheckVerdict.PASSED
    assert with_buckets.verdict is CheckVerdict.FAILED


# --- verdicts ---------------------------------------------------------------------------------

STABLE = QualitySample(
    answers=1930,
    unknown=232,
    refused=20,
    feedback=600,
    feedback_score=480,
    feedback_retracted=0,
    judge_sum=400,
    judge_count=500,
)
HEALTHY = QualitySample(
    answers=412,
    unknown=50,
    refused=4,
    feedback=120,
    feedback_score=97,
    feedback_retracted=1,
    judge_sum=81,
    judge_count=100,
)

CHECKS = [
    # (id, analysis, canary, stable, field, verdict, reason)
    (
        "issue-example",
        UNKNOWN,
        QualitySample(answers=412, unknown=128),
        STABLE,
        "max_unknown_rate_increase",
        CheckVerdict.FAILED,
        "unknown rate 31 % vs 12 % stable, +19 pts (max +5 pts), p < 0.001, n = 412/1,930",
    ),
    (
        "same-rate-passes",
        UNKNOWN,
        HEALTHY,
        STABLE,
        "max_unknown_rate_increase",
        CheckVerdict.PASSED,
        "unknown rate 12 % vs 12 % stable, +0.1 pts (max +5 pts), p = 1, n = 412/1,930",
    ),
    (
        "too-few-canary-answers",
        UNKNOWN,
        QualitySample(answers=49, unknown=49),
        STABLE,
        "max_unknown_rate_increase",
        CheckVerdict.INCONCLUSIVE,
        "unknown rate: canary 49 answers, fewer than minQualitySamples 50",
    ),
    (
        "too-few-on-both-sides",
        UNKNOWN,
        QualitySample(answers=10, unknown=10),
        QualitySample(answers=20),
        "max_unknown_rate_increase",
        CheckVerdict.INCONCLUSIVE,
        "unknown rate: canary 10, stable 20 answers, fewer than minQualitySamples 50",
    ),
    (
        "no-data-at-all",
        UNKNOWN,
        QualitySample(),
        QualitySample(),
        "max_unknown_rate_increase",
        CheckVerdict.INCONCLUSIVE,
        "unknown rate: canary 0, stable 0 answers, fewer than minQualitySamples 50",
    ),
    (
        "no-stable-version",
        UNKNOWN,
        HEALTHY,
        None,
        "max_unknown_rate_increase",
        CheckVerdict.INCONCLUSIVE,
        "unknown rate: no stable version to compare with",
    ),
    (
        "refusals-up",
        Analysis(max_refused_rate_increase=0.02),
        QualitySample(answers=400, refused=60),
        STABLE,
        "max_refused_rate_increase",
        CheckVerdict.FAILED,
        "refused rate 15 % vs 1.0 % stable, +14 pts (max +2 pts), p < 0.001, n = 400/1,930",
    ),
    (
        "feedback-dropped",
        Analysis(max_feedback_score_drop=0.3),
        QualitySample(feedback=200, feedback_score=90, feedback_retracted=10),
        STABLE,
        "max_feedback_score_drop",
        CheckVerdict.FAILED,
        "feedback score -0.20 vs 0.60 stable, -0.80 (max -0.30), p < 0.001, n = 200/600",
    ),
    (
        "feedback-below-minimum-without-stable",
        Analysis(min_feedback_score=0.5),
        QualitySample(feedback=100, feedback_score=50),
        None,
        "min_feedback_score",
        CheckVerdict.FAILED,
        "feedback score 0.00 (min 0.50), p < 0.001, n = 100",
    ),
    (
        "too-few-ratings",
        Analysis(min_feedback_score=0.5),
        QualitySample(feedback=30, feedback_score=0),
        STABLE,
        "min_feedback_score",
        CheckVerdict.INCONCLUSIVE,
        "feedback score: canary 30 feedback scores, fewer than minQualitySamples 50",
    ),
    (
        "judge-fine",
        Analysis(min_judge_score=0.6),
        HEALTHY,
        STABLE,
        "min_judge_score",
        CheckVerdict.PASSED,
        "judge score 0.81 (min 0.60), p = 1, n = 100",
    ),
    (
        "judge-dropped-a-little-not-proven",
        Analysis(max_judge_score_drop=0.05, min_quality_samples=20),
        QualitySample(judge_sum=14, judge_count=20),
        STABLE,
        "max_judge_score_drop",
        CheckVerdict.PASSED,
        "judge score 0.70 vs 0.80 stable, -0.10 (max -0.05), p = 1, n = 20/500",
    ),
]


@pytest.mark.parametrize(
    ("analysis", "canary", "stable", "field", "verdict", "reason"),
    [c[1:] for c in CHECKS],
    ids=[c[0] for c in CHECKS],
)
def test_check(
    analysis: Analysis,
    canary: QualitySample,
    stable: QualitySample | None,
    field: str,
    verdict: CheckVerdict,
    reason: str,
) -> None:
    (check,) = assess_quality(analysis, canary, stable)
    assert (check.field, check.verdict, check.reason) == (field, verdict, reason)
    assert check.canary_samples >= 0


def test_every_configured_check_is_assessed_in_order() -> None:
    checks = assess_quality(ALL, HEALTHY, STABLE)
    assert [c.field for c in checks] == quality_fields(ALL)
    assert [c.verdict for c in checks] == [CheckVerdict.PASSED] * 6


def test_confidence_decides_a_borderline_case() -> None:
    # +8 pts over 250 answers: p ≈ 0.027, a failure at 95 % confidence, not at 99 %.
    canary = QualitySample(answers=250, unknown=50)
    stable = QualitySample(answers=2000, unknown=240)
    strict = UNKNOWN.model_copy(update={"max_unknown_rate_increase": 0.0})
    (loose,) = assess_quality(strict, canary, stable)
    (sure,) = assess_quality(strict.model_copy(update={"quality_confidence": 0.99}), canary, stable)
    assert loose.p_value is not None and 0.01 < loose.p_value < 0.05
    assert (loose.verdict, sure.verdict) == (CheckVerdict.FAILED, CheckVerdict.PASSED)


@pytest.mark.parametrize(("p", "text"), [(0.0, "p < 0.001"), (0.0123, "p = 0.012"), (1.0, "p = 1")])
def test_render_p_value(p: float, text: str) -> None:
    assert render_p_value(p) == text


# --- joined with the rest of the analysis -----------------------------------------------------

REQUESTS = VersionSample(requests=412, errors=0, p95_ms=900)
BAD = QualitySample(answers=412, unknown=128)


def measure(canary: QualitySample | None, stable: QualitySample | None = STABLE) -> Measurement:
    return Measurement(
        canary=REQUESTS,
        stable=VersionSample(requests=1930, errors=2, p95_ms=800),
        canary_quality=canary,
        stable_quality=stable,
    )


ASSESS = [
    ("quality-failure-fails", UNKNOWN, measure(BAD), Verdict.FAILED),
    ("quality-pass-passes", UNKNOWN, measure(HEALTHY), Verdict.SUCCESSFUL),
    ("too-few-is-inconclusive", UNKNOWN, measure(QualitySample(answers=10)), Verdict.INCONCLUSIVE),
    ("no-quality-data-is-inconclusive", UNKNOWN, measure(None, None), Verdict.INCONCLUSIVE),
    (
        "errors-fail-even-when-quality-is-inconclusive",
        UNKNOWN.model_copy(update={"max_error_rate": 0.0}),
        Measurement(
            canary=VersionSample(requests=412, errors=5, p95_ms=900),
            canary_quality=QualitySample(answers=10),
        ),
        Verdict.FAILED,
    ),
    (
        "too-few-requests-wins-over-quality",
        UNKNOWN,
        Measurement(canary=VersionSample(requests=5, errors=0, p95_ms=1), canary_quality=BAD),
        Verdict.INCONCLUSIVE,
    ),
    (
        "prometheus-error-wins",
        UNKNOWN,
        Measurement(error="HTTP 503", canary_quality=BAD, stable_quality=STABLE),
        Verdict.ERROR,
    ),
    ("no-quality-field-ignores-quality-data", Analysis(), measure(BAD), Verdict.SUCCESSFUL),
]


@pytest.mark.parametrize(
    ("analysis", "measurement", "verdict"), [c[1:] for c in ASSESS], ids=[c[0] for c in ASSESS]
)
def test_assess_with_quality(
    analysis: Analysis, measurement: Measurement, verdict: Verdict
) -> None:
    assert assess(analysis, measurement).verdict is verdict


def test_failure_reason_is_the_human_line() -> None:
    assessment = assess(UNKNOWN, measure(BAD))
    assert assessment.reasons == (
        "unknown rate 31 % vs 12 % stable, +19 pts (max +5 pts), p < 0.001, n = 412/1,930",
    )
    assert assessment.quality_summary == f"Failed: {assessment.reasons[0]}"


def test_summary_names_the_worst_check_and_counts_the_others() -> None:
    analysis = ALL.model_copy(update={"min_judge_score": 0.9, "max_judge_score_drop": 0.0})
    bad_judge = QualitySample(**{**HEALTHY.__dict__, "judge_sum": 50.0})
    assessment = assess(analysis, measure(bad_judge))
    assert assessment.verdict is Verdict.FAILED
    summary = assessment.quality_summary
    assert summary is not None
    assert summary.startswith("Failed: judge score 0.50 (min 0.90)")
    assert summary.endswith("(+1 more)")
    assert assess(Analysis(), measure(BAD)).quality_summary is None
    inconclusive = assess(UNKNOWN, measure(QualitySample(answers=3)))
    assert inconclusive.quality_summary == (
        "Inconclusive: unknown rate: canary 3 answers, fewer than minQualitySamples 50"
    )


def test_to_status_carries_each_check() -> None:
    at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    status = assess(UNKNOWN, measure(BAD)).to_status(at)
    check = status["values"]["quality"]["maxUnknownRateIncrease"]
    assert check == {
        "verdict": "Failed",
        "reason": status["reasons"][0],
        "canarySamples": 412.0,
        "stableSamples": 1930.0,
        "canary": pytest.approx(128 / 412, abs=1e-6),
        "stable": pytest.approx(232 / 1930, abs=1e-6),
        "effect": pytest.approx(128 / 412 - 232 / 1930, abs=1e-6),
        "threshold": 0.05,
        "pValue": check["pValue"],
    }
    assert 0 <= check["pValue"] < 0.001
    assert json.loads(json.dumps(status, allow_nan=False)) == status
    inconclusive = assess(UNKNOWN, measure(QualitySample(answers=3))).to_status(at)
    entry = inconclusive["values"]["quality"]["maxUnknownRateIncrease"]
    assert (entry["verdict"], entry["pValue"], entry["effect"]) == ("Inconclusive", None, None)


# --- fetched from Prometheus (HTTP API over a mock transport) ----------------------------------


def _prometheus(answers: dict[str, float | None]) -> httpx.AsyncClient:
    """A Prometheus API answering each query with `answers[first matching fragment]`."""

    def handle(request: httpx.Request) -> httpx.Response:
        query = dict(httpx.QueryParams(request.content.decode()))["query"]
        value = next((v for fragment, v in answers.items() if fragment in query), None)
        result = [] if value is None else [{"metric": {}, "value": [0, str(value)]}]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def test_fetch_measurement_reads_both_versions_quality() -> None:
    answers: dict[str, float | None] = {
        'version="1.1.0",outcome="unknown"': 128,
        'version="1.0.0",outcome="unknown"': 232,
        'version="1.1.0",outcome=~"answered': 412,
        'version="1.0.0",outcome=~"answered': 1930,
        'version="1.1.0",outcome!="invalid"': 412,
        'version="1.0.0",outcome!="invalid"': 1930,
        "histogram_quantile": 900,
    }

    async def run() -> Measurement:
        async with _prometheus(answers) as http:
            client = PrometheusClient(http, "http://prometheus")
            return await fetch_measurement(client, "policy-qa", "1.1.0", "1.0.0", UNKNOWN)

    measurement = asyncio.run(run())
    assert measurement.canary_quality == QualitySample(answers=412, unknown=128)
    assert measurement.stable_quality == QualitySample(answers=1930, unknown=232)
    assert "canary.quality.unknown" in measurement.queries
    assert "stable.quality.answers" in measurement.queries
    assert assess(UNKNOWN, measurement).verdict is Verdict.FAILED


def test_fetch_measurement_without_quality_fields_sends_no_quality_query() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(dict(httpx.QueryParams(request.content.decode()))["query"])
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": []}}
        )

    async def run() -> Measurement:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
            client = PrometheusClient(http, "http://prometheus")
            return await fetch_measurement(client, "policy-qa", "1.1.0", "1.0.0", Analysis())

    measurement = asyncio.run(run())
    assert measurement.canary_quality is None and measurement.stable_quality is None
    assert len(seen) == 6
    assert not any('outcome=~"answered' in q or "feedback" in q for q in seen)


def test_a_failing_quality_query_is_a_prometheus_error() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        query = dict(httpx.QueryParams(request.content.decode()))["query"]
        if 'outcome="unknown"' in query:
            return httpx.Response(503, json={"status": "error", "error": "overloaded"})
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": []}}
        )

    async def run() -> Assessment:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
            client = PrometheusClient(http, "http://prometheus")
            measurement = await fetch_measurement(client, "p", "1.1.0", "1.0.0", UNKNOWN)
            return assess(UNKNOWN, measurement)

    assessment = asyncio.run(run())
    assert assessment.verdict is Verdict.ERROR
    assert "overloaded" in assessment.reasons[0]


def test_every_query_of_a_measurement_is_evaluated_at_one_instant() -> None:
    times: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        times.append(dict(httpx.QueryParams(request.content.decode())).get("time"))
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": []}}
        )

    async def run(at: float | None) -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
            client = PrometheusClient(http, "http://prometheus")
            await fetch_measurement(client, "p", "1.1.0", "1.0.0", ALL, at)

    asyncio.run(run(1764763200.25))
    assert len(times) == 6 + 2 * 9
    assert set(times) == {"1764763200.250"}
    times.clear()
    asyncio.run(run(None))
    assert set(times) == {None}  # without an instant, Prometheus' own now
