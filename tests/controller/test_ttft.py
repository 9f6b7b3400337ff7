"""maxTtftP95Ms: the query, and the canary's verdict (table tests)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.v1alpha1 import Analysis
from controller.analysis import Measurement, Verdict, assess, build_sample
from controller.ttft import assess_ttft, build_ttft_query


def test_the_query_reads_the_versions_ttft_histogram() -> None:
    query = build_ttft_query("policy-qa", "1.1.0", "2m")
    assert query == (
        "1000 * histogram_quantile(0.95, sum by (le) (rate("
        'promptrollouts_time_to_first_token_seconds_bucket{prompt="policy-qa",version="1.1.0"}'
        "[2m])))"
    )


@pytest.mark.parametrize(
    ("limit", "p95_ms", "fails"),
    [
        (None, 9000.0, False),  # not configured: never fails
        (800, None, False),  # no stream in the window: skipped
        (800, 799.0, False),
        (800, 800.0, False),  # at the limit passes, as maxP95LatencyMs does
        (800, 800.5, True),
        (800, 4000.0, True),
    ],
)
def test_the_ttft_check(limit: int | None, p95_ms: float | None, fails: bool) -> None:
    failures = assess_ttft(Analysis(max_ttft_p95_ms=limit), p95_ms)
    assert bool(failures) is fails
    if fails:
        assert failures == [f"p95 time to first token {p95_ms:.0f} ms > maxTtftP95Ms {limit}"]


@pytest.mark.parametrize(
    ("ttft", "verdict"),
    [(None, Verdict.SUCCESSFUL), (300.0, Verdict.SUCCESSFUL), (1500.0, Verdict.FAILED)],
)
def test_a_slow_first_token_fails_an_otherwise_healthy_canary(
    ttft: float | None, verdict: Verdict
) -> None:
    analysis = Analysis.model_validate({"minRequests": 10, "maxTtftP95Ms": 1000})
    measurement = Measurement(
        canary=build_sample(requests=100.0, errors=0.0, p95_ms=900.0), canary_ttft_p95_ms=ttft
    )
    assessment = assess(analysis, measurement)
    assert assessment.verdict is verdict
    status = assessment.to_status(datetime(2026, 1, 1, tzinfo=UTC))
    if ttft is not None:
        assert status["values"]["canary"]["ttftP95Ms"] == ttft


def test_the_field_is_validated() -> None:
    with pytest.raises(ValueError, match=r"max_ttft_p95_ms|maxTtftP95Ms"):
        Analysis.model_validate({"maxTtftP95Ms": 0})
