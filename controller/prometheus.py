"""Measuring a canary with Prometheus' HTTP API (I/O); the verdict is controller.analysis'."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx

from api.v1alpha1 import Analysis
from controller.analysis import (
    Measurement,
    VersionSample,
    build_check_query,
    build_queries,
    build_sample,
)
from controller.quality import (
    BUCKET_COUNTS,
    QualitySample,
    build_quality_queries,
    build_quality_sample,
)
from controller.ttft import build_ttft_query

__all__ = ["PrometheusClient", "PrometheusError", "fetch_measurement"]


class PrometheusError(Exception):
    """Prometheus could not answer a query."""


class PrometheusClient:
    """Instant queries against one Prometheus server."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, timeout: float = 5.0) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + "/api/v1/query"
        self._timeout = timeout

    async def _payload(self, promql: str, at: float | None) -> dict[str, Any]:
        data = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        try:
            response = await self._http.post(self._url, data=data, timeout=self._timeout)
            payload: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise PrometheusError(f"{type(error).__name__}: {error}") from error
        if response.status_code != 200 or payload.get("status") != "success":
            detail = payload.get("error") or f"HTTP {response.status_code}"
            raise PrometheusError(f"query failed: {detail}")
        return payload

    async def query(self, promql: str, at: float | None = None) -> float | None:
        """The sum of an instant query's sample values; None when it returns no (finite) data.

        `at` (Unix seconds) evaluates the query at that instant instead of Prometheus' now.
        """
        payload = await self._payload(promql, at)
        return _sum_values(payload.get("data", {}))

    async def query_by(self, promql: str, label: str, at: float | None = None) -> dict[str, float]:
        """An instant vector's finite values keyed by `label` (e.g. ``le``); {} without data."""
        payload = await self._payload(promql, at)
        data = payload.get("data", {})
        result = data.get("result")
        if data.get("resultType") != "vector" or not isinstance(result, list):
            raise PrometheusError(f"unexpected result type {data.get('resultType')!r}")
        values: dict[str, float] = {}
        for sample in result:
            value = float(sample["value"][1])
            key = sample.get("metric", {}).get(label)
            if key is not None and math.isfinite(value):
                values[str(key)] = values.get(str(key), 0.0) + value
        return values


def _sum_values(data: dict[str, Any]) -> float | None:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list):
        values = [float(result[1])]
    elif kind == "vector" and isinstance(result, list):
        values = [float(sample["value"][1]) for sample in result]
    else:
        raise PrometheusError(f"unexpected result type {kind!r}")
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) if finite else None


async def _sample(
    client: PrometheusClient, queries: dict[str, str], at: float | None
) -> VersionSample:
    requests, errors, p95 = await asyncio.gather(
        client.query(queries["requests"], at),
        client.query(queries["errors"], at),
        client.query(queries["p95_ms"], at),
    )
    return build_sample(requests, errors, p95)


async def _none() -> None:
    return None


async def _quality(
    client: PrometheusClient, queries: dict[str, str], at: float | None
) -> QualitySample | None:
    if not queries:
        return None
    values = await asyncio.gather(
        *(
            client.query_by(q, "le", at) if name in BUCKET_COUNTS else client.query(q, at)
            for name, q in queries.items()
        )
    )
    return build_quality_sample(dict(zip(queries, values, strict=True)))


async def fetch_measurement(
    client: PrometheusClient,
    prompt: str,
    canary_version: str,
    stable_version: str | None,
    analysis: Analysis,
    at: float | None = None,
    mode: str = "live",
) -> Measurement:
    """Run the canary's (and the stable's) queries; a Prometheus failure becomes `error`.

    `mode` "shadow" measures the canary's shadow answers (the stable's stay live ones).
    With `at` (Unix seconds) every query is evaluated at that one instant, so a rate's
    numerator and denominator come from the same samples and the same extrapolation.
    """
    window = analysis.window
    canary_queries = build_queries(prompt, canary_version, window, mode)
    stable_queries = build_queries(prompt, stable_version, window) if stable_version else {}
    checks = {
        c.name: build_check_query(c.query, prompt, canary_version, window) for c in analysis.checks
    }
    queries = {f"canary.{k}": v for k, v in canary_queries.items()}
    queries |= {f"stable.{k}": v for k, v in stable_queries.items()}
    queries |= {f"check.{k}": v for k, v in checks.items()}
    canary_quality = build_quality_queries(prompt, canary_version, window, analysis, mode)
    stable_quality = (
        build_quality_queries(prompt, stable_version, window, analysis) if stable_version else {}
    )
    queries |= {f"canary.quality.{k}": v for k, v in canary_quality.items()}
    queries |= {f"stable.quality.{k}": v for k, v in stable_quality.items()}
    ttft_query = None
    if analysis.max_ttft_p95_ms is not None:
        ttft_query = queries["canary.ttft_p95_ms"] = build_ttft_query(
            prompt, canary_version, window
        )
    try:
        canary, stable, values, canary_counts, stable_counts, ttft = await asyncio.gather(
            _sample(client, canary_queries, at),
            _sample(client, stable_queries, at) if stable_queries else _none(),
            asyncio.gather(*(client.query(q, at) for q in checks.values())),
            _quality(client, canary_quality, at),
            _quality(client, stable_quality, at),
            client.query(ttft_query, at) if ttft_query else _none(),
        )
    except PrometheusError as error:
        return Measurement(queries=queries, error=str(error), mode=mode)
    return Measurement(
        canary=canary,
        stable=stable,
        checks=dict(zip(checks, values, strict=True)),
        queries=queries,
        canary_quality=canary_counts,
        stable_quality=stable_counts,
        canary_ttft_p95_ms=ttft,
        mode=mode,
    )
