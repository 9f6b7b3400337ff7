"""The PromptVersions being served right now, replaced atomically when they change."""

from __future__ import annotations

import logging

from api.v1alpha1 import Phase
from service.answering.outcome import Outcome
from service.catalog.registry import LoadedVersion, PromptRegistry
from service.llm.extractive import EXTRACTIVE_MODEL_ID
from service.telemetry.metrics import Metrics
from service.telemetry.shadow_metrics import publish_shadow_series
from service.tools import ERROR_REASONS as TOOL_ERROR_REASONS

__all__ = ["Catalog", "publish_registry"]

_log = logging.getLogger(__name__)


class Catalog:
    """Holds the current registry; readers always see one consistent snapshot."""

    def __init__(self, registry: PromptRegistry, metrics: Metrics) -> None:
        self._registry = registry
        self._metrics = metrics
        self.ready = True
        self._publish()

    @property
    def registry(self) -> PromptRegistry:
        """The snapshot to serve from."""
        return self._registry

    def replace(self, registry: PromptRegistry) -> None:
        """Serve `registry` from now on; log what changed."""
        before = {(s.prompt, s.version): _shown(s) for s in self._registry.versions()}
        self._registry = registry
        self.ready = True
        for served in registry.versions():
            if before.get((served.prompt, served.version)) != _shown(served):
                phase, weight, shadow = _shown(served)
                _log.info(
                    "serving %s %s: %s at %d%%%s",
                    served.prompt,
                    served.version,
                    phase,
                    weight,
                    f", shadowing {shadow}%" if shadow else "",
                )
        self._publish()

    def _publish(self) -> None:
        publish_registry(self._metrics, self._registry)


def _shown(served: LoadedVersion) -> tuple[Phase, int, int]:
    """What a change of is logged: phase, live weight and shadow share."""
    return served.phase, served.weight, getattr(served, "shadow_percent", 0)


def publish_registry(metrics: Metrics, registry: PromptRegistry) -> None:
    """Create every series a loaded version can have, at 0, and publish the weights.

    A counter series that first appears already holding a value shows no increase
    to rate()/increase(): without this, a canary's first burst of errors would be
    invisible to the rollout analysis and the recording rules.
    """
    for served in registry.versions():
        labels = (served.prompt, served.version)
        metrics.version_weight.labels(*labels).set(served.weight)
        for outcome in Outcome:
            metrics.requests.labels(*labels, outcome.value)
        metrics.request_duration.labels(*labels)
        metrics.time_to_first_token.labels(*labels)
        metrics.empty_retrievals.labels(*labels)
        metrics.cache_hits.labels(*labels)
        for quality in (
            metrics.answers_uncited,
            metrics.answer_length,
            metrics.feedback,
            metrics.feedback_score,
            metrics.feedback_score_retracted,
        ):
            quality.labels(*labels)
        for tool in served.resource.spec.tools:
            metrics.tool_calls.labels(served.prompt, tool.name)
            metrics.tool_duration.labels(served.prompt, tool.name)
            for reason in TOOL_ERROR_REASONS:
                metrics.tool_errors.labels(served.prompt, tool.name, reason)
        model = served.resource.spec.model
        for name in (model.name, *model.fallbacks, EXTRACTIVE_MODEL_ID):
            metrics.cost.labels(*labels, name)
            for direction in ("input", "output"):
                metrics.tokens.labels(*labels, name, direction)
        models = [model.name, *model.fallbacks, EXTRACTIVE_MODEL_ID]
        publish_shadow_series(metrics.shadow, served.prompt, served.version, models)
        for name in (model.name, *model.fallbacks):
            metrics.breaker_state.labels(name)
            metrics.upstream_requests.labels(name, "200")
            metrics.upstream_retries.labels(name)
