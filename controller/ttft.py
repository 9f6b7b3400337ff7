"""Time to first token of a canary's streamed answers (pure): its query and its check.

``spec.rollout.analysis.maxTtftP95Ms`` bounds the 95th percentile of
``promptrollouts_time_to_first_token_seconds`` (from a streamed request's arrival to the
first answer text sent) over the analysis window. A canary over the bound fails the
analysis, as one over ``maxP95LatencyMs`` does. Without streamed requests in the window
there is no value, and the check is skipped: a version may serve no streams at all.
"""

from __future__ import annotations

from api.v1alpha1 import Analysis

__all__ = ["TTFT_METRIC", "assess_ttft", "build_ttft_query"]

TTFT_METRIC = "promptrollouts_time_to_first_token_seconds"


def build_ttft_query(prompt: str, version: str, window: str) -> str:
    """PromQL for one version's p95 time to first token (ms) over `window`."""
    selector = f'prompt="{prompt}",version="{version}"'
    return (
        "1000 * histogram_quantile(0.95, sum by (le) ("
        f"rate({TTFT_METRIC}_bucket{{{selector}}}[{window}])))"
    )


def assess_ttft(analysis: Analysis, p95_ms: float | None) -> list[str]:
    """The failure, if the canary's p95 time to first token exceeds maxTtftP95Ms."""
    limit = analysis.max_ttft_p95_ms
    if limit is None or p95_ms is None:  # no streams in the window
        return []
    if p95_ms > limit:
        return [f"p95 time to first token {p95_ms:.0f} ms > maxTtftP95Ms {limit}"]
    return []
