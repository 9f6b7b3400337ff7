"""Canary analysis (pure): the queries to run, and the verdict on what they returned.

The verdict is a small enum, as in Argo Rollouts' analysis, with two deliberate
differences: too little traffic is ``INCONCLUSIVE`` (never a failure, never a
promotion), and Prometheus failing to answer is ``ERROR`` (the weight is held;
``errorLimit`` consecutive errors roll back).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from api.v1alpha1 import Analysis
from controller.conditions import format_time
from controller.quality import CheckVerdict, QualityCheck, QualitySample, assess_quality
from controller.ttft import assess_ttft

__all__ = [
    "FAILURE_OUTCOMES",
    "Assessment",
    "Measurement",
    "Verdict",
    "VersionSample",
    "assess",
    "build_queries",
    "build_sample",
    "mode_selector",
    "series_name",
]

#: Outcomes that count as errors of a version (see service/answering/outcome.py).
FAILURE_OUTCOMES = ("unavailable", "rate_limited", "rejected", "invalid_output", "error")


class Verdict(StrEnum):
    """The result of one analysis."""

    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


@dataclass(frozen=True)
class VersionSample:
    """What Prometheus said about one version over the window (None: no data)."""

    requests: float | None
    errors: float | None
    p95_ms: float | None

    @property
    def error_rate(self) -> float | None:
        """Errors over requests, or None without requests."""
        if not self.requests or self.errors is None:
            return None
        return self.errors / self.requests


def build_sample(
    requests: float | None, errors: float | None, p95_ms: float | None
) -> VersionSample:
    """One version's sample from its three query results.

    Prometheus returns no series at all for an error counter that never moved, so with
    requests in the window, no error data means no errors (0.0). Without requests the
    error result is kept as it came (there is no rate to compute either way).
    """
    if requests and errors is None:
        errors = 0.0
    return VersionSample(requests=requests, errors=errors, p95_ms=p95_ms)


@dataclass(frozen=True)
class Measurement:
    """Everything one analysis measured, or the error that stopped it."""

    canary: VersionSample | None = None
    stable: VersionSample | None = None
    checks: Mapping[str, float | None] = field(default_factory=dict)
    queries: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    #: Quality counts (controller.quality), when the analysis has quality checks.
    canary_quality: QualitySample | None = None
    stable_quality: QualitySample | None = None
    #: The canary's p95 time to first token (ms), when maxTtftP95Ms is set (controller.ttft).
    canary_ttft_p95_ms: float | None = None
    #: "shadow": the canary's shadow answers were measured (a shadow step), else "live".
    mode: str = "live"


@dataclass(frozen=True)
class Assessment:
    """A verdict and why."""

    verdict: Verdict
    reasons: tuple[str, ...]
    measurement: Measurement
    quality: tuple[QualityCheck, ...] = ()

    @property
    def quality_summary(self) -> str | None:
        """The quality verdict in one line (the worst check's), or None without quality checks.

        ``Failed: unknown rate 31 % vs 12 % stable, +19 pts (max +5 pts), p < 0.001,
        n = 412/1,930``; more checks of the same verdict are counted at the end.
        """
        for verdict in (CheckVerdict.FAILED, CheckVerdict.INCONCLUSIVE, CheckVerdict.PASSED):
            same = [check for check in self.quality if check.verdict is verdict]
            if same:
                more = f" (+{len(same) - 1} more)" if len(same) > 1 else ""
                return f"{verdict.value}: {same[0].reason}{more}"
        return None

    def to_status(self, at: datetime) -> dict[str, Any]:
        """The ``status.lastAnalysis`` object (JSON): time, verdict, reasons, values, queries."""
        values: dict[str, Any] = {}
        for role, sample in (
            ("canary", self.measurement.canary),
            ("stable", self.measurement.stable),
        ):
            if sample is not None:
                values[role] = {
                    "requests": _rounded(sample.requests),
                    "errorRate": _rounded(sample.error_rate),
                    "p95LatencyMs": _rounded(sample.p95_ms),
                }
        if self.measurement.canary_ttft_p95_ms is not None and "canary" in values:
            values["canary"]["ttftP95Ms"] = _rounded(self.measurement.canary_ttft_p95_ms)
        if self.measurement.checks:
            values["checks"] = {k: _rounded(v) for k, v in self.measurement.checks.items()}
        if self.quality:
            values["quality"] = {_camel(check.field): check.to_status() for check in self.quality}
        result: dict[str, Any] = {
            "time": format_time(at),
            "mode": self.measurement.mode,
            "verdict": self.verdict.value,
            "reasons": list(self.reasons),
            "values": values,
            "queries": dict(self.measurement.queries),
        }
        if self.measurement.error:
            result["error"] = self.measurement.error
        return result


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _rounded(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 6)


def _selector(prompt: str, version: str) -> str:
    return f'prompt="{prompt}",version="{version}"'


def series_name(name: str, mode: str) -> str:
    """An answer metric's name in `mode`: ``promptrollouts_shadow_*`` for shadow answers."""
    return (
        name.replace("promptrollouts_", "promptrollouts_shadow_", 1) if mode == "shadow" else name
    )


def mode_selector(prompt: str, version: str, mode: str) -> str:
    """The label selector of one version's answers in `mode` (shadow series carry mode)."""
    selector = _selector(prompt, version)
    return f'{selector},mode="shadow"' if mode == "shadow" else selector


def build_queries(prompt: str, version: str, window: str, mode: str = "live") -> dict[str, str]:
    """PromQL for one version's requests, errors and p95 latency (ms) over `window`.

    `mode` "shadow" reads the version's shadow answers (``promptrollouts_shadow_*``).
    """
    selector = mode_selector(prompt, version, mode)
    failures = "|".join(FAILURE_OUTCOMES)
    requests = series_name("promptrollouts_requests_total", mode)
    duration = series_name("promptrollouts_request_duration_seconds_bucket", mode)
    return {
        # 422s (outcome "invalid") are the caller's fault: not in the denominator.
        "requests": (f'sum(increase({requests}{{{selector},outcome!="invalid"}}[{window}]))'),
        "errors": (f'sum(increase({requests}{{{selector},outcome=~"{failures}"}}[{window}]))'),
        "p95_ms": (
            "1000 * histogram_quantile(0.95, sum by (le) ("
            f"rate({duration}{{{selector}}}[{window}])))"
        ),
    }


def build_check_query(template: str, prompt: str, version: str, window: str) -> str:
    """A custom check's PromQL with its placeholders filled in."""
    return (
        template.replace("{{prompt}}", prompt)
        .replace("{{version}}", version)
        .replace("{{window}}", window)
    )


def assess(analysis: Analysis, measurement: Measurement) -> Assessment:
    """The verdict on a canary's measurement, with the reasons in order."""
    if measurement.error is not None:
        return Assessment(Verdict.ERROR, (f"prometheus: {measurement.error}",), measurement)
    canary = measurement.canary
    if canary is None or canary.requests is None or canary.requests < analysis.min_requests:
        seen = 0 if canary is None or canary.requests is None else round(canary.requests)
        reason = f"{seen} requests in the window, fewer than minRequests {analysis.min_requests}"
        return Assessment(Verdict.INCONCLUSIVE, (reason,), measurement)
    quality = assess_quality(analysis, measurement.canary_quality, measurement.stable_quality)
    failures = _absolute_failures(analysis, canary) + _relative_failures(
        analysis, canary, measurement.stable
    )
    failures += _check_failures(analysis, measurement.checks)
    failures += assess_ttft(analysis, measurement.canary_ttft_p95_ms)
    failures += [check.reason for check in quality if check.verdict is CheckVerdict.FAILED]
    if failures:
        return Assessment(Verdict.FAILED, tuple(failures), measurement, quality)
    missing = [name for name, value in measurement.checks.items() if value is None]
    unsure = [c.reason for c in quality if c.verdict is CheckVerdict.INCONCLUSIVE]
    if canary.p95_ms is None or missing or unsure:
        what = ", ".join((["p95 latency"] if canary.p95_ms is None else []) + missing)
        reasons = ([f"no data for {what}"] if what else []) + unsure
        return Assessment(Verdict.INCONCLUSIVE, tuple(reasons), measurement, quality)
    return Assessment(Verdict.SUCCESSFUL, ("all checks passed",), measurement, quality)


def _absolute_failures(analysis: Analysis, canary: VersionSample) -> list[str]:
    failures = []
    rate = canary.error_rate
    if rate is not None and rate > analysis.max_error_rate:
        failures.append(f"error rate {rate:.4f} > maxErrorRate {analysis.max_error_rate}")
    if canary.p95_ms is not None and canary.p95_ms > analysis.max_p95_latency_ms:
        failures.append(
            f"p95 latency {canary.p95_ms:.0f} ms > maxP95LatencyMs {analysis.max_p95_latency_ms}"
        )
    return failures


def _relative_failures(
    analysis: Analysis, canary: VersionSample, stable: VersionSample | None
) -> list[str]:
    if stable is None or stable.requests is None or stable.requests < analysis.min_requests:
        return []  # no trustworthy baseline: absolute thresholds alone decide
    failures = []
    increase = analysis.max_error_rate_increase
    if increase is not None and canary.error_rate is not None and stable.error_rate is not None:
        delta = canary.error_rate - stable.error_rate
        if delta > increase:
            failures.append(
                f"error rate {delta:.4f} above stable > maxErrorRateIncrease {increase}"
            )
    ratio = analysis.max_p95_latency_ratio
    if ratio is not None and canary.p95_ms is not None and stable.p95_ms:
        observed = canary.p95_ms / stable.p95_ms
        if observed > ratio:
            failures.append(f"p95 latency {observed:.2f}x stable > maxP95LatencyRatio {ratio}")
    return failures


def _check_failures(analysis: Analysis, values: Mapping[str, float | None]) -> list[str]:
    failures = []
    for check in analysis.checks:
        value = values.get(check.name)
        if value is None:
            continue
        if check.min is not None and value < check.min:
            failures.append(f"check {check.name} = {value:g} < min {check.min:g}")
        if check.max is not None and value > check.max:
            failures.append(f"check {check.name} = {value:g} > max {check.max:g}")
    return failures
