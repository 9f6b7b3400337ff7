"""Quality signals recorded once per answer from its result: answer length, uncited answers,
refusals by the model; every series exists at 0 for each served version before any traffic."""

from __future__ import annotations

import pytest

from api.v1alpha1 import PromptVersion
from service.answering.outcome import Outcome
from service.catalog.catalog import Catalog
from service.catalog.registry import PromptRegistry
from service.errors import UpstreamUnavailableError
from service.telemetry.metrics import Metrics
from tests.service.test_pipeline import (
    EMPTY_ANSWER,
    REFUSAL,
    ScriptedModel,
    _count,
    _requests,
    _run,
    _service,
    _version,
)

QUALITY_COUNTERS = (
    "promptrollouts_answers_uncited_total",
    "promptrollouts_feedback_total",
    "promptrollouts_feedback_score_total",
    "promptrollouts_feedback_score_retracted_total",
)


def _with(base: PromptVersion, **spec: object) -> PromptVersion:
    """`base` with some spec fields replaced (the models are frozen)."""
    raw = base.model_dump(by_alias=True, exclude_none=True)
    raw["spec"].update(spec)
    return PromptVersion.model_validate(raw)


def _lenient() -> PromptVersion:
    """The test version, but answers without citations are allowed."""
    guardrails = _version().spec.guardrails.model_dump(by_alias=True)
    return _with(_version(), guardrails=guardrails | {"requireCitations": False})


def _length(service_metrics: Metrics, suffix: str, **labels: str) -> float:
    name = f"promptrollouts_answer_length_chars_{suffix}"
    value = service_metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_every_quality_series_starts_at_zero_for_each_served_version() -> None:
    metrics = Metrics()
    stable, canary = _version(), _with(_version(), version="1.1.0")
    Catalog(PromptRegistry.from_resources([stable, canary], {"policies"}), metrics)
    for version in ("1.0.0", "1.1.0"):
        labels = {"prompt": "qa", "version": version}
        for name in QUALITY_COUNTERS:
            assert metrics.registry.get_sample_value(name, labels) == 0.0, (name, version)
        count = "promptrollouts_answer_length_chars_count"
        assert metrics.registry.get_sample_value(count, labels) == 0.0
        bucket = "promptrollouts_answer_length_chars_bucket"
        assert metrics.registry.get_sample_value(bucket, labels | {"le": "6400.0"}) == 0.0


@pytest.mark.asyncio
async def test_a_cited_answer_is_measured_and_not_uncited() -> None:
    reply = "Digital items can be refunded [1]."
    service = _service(ScriptedModel(reply))
    await _run(service)
    labels = {"prompt": "qa", "version": "1.0.0"}
    assert _length(service.metrics, "count", **labels) == 1
    assert _length(service.metrics, "sum", **labels) == len(reply)
    assert _length(service.metrics, "bucket", **labels, le="50.0") == 1
    assert _count(service, "promptrollouts_answers_uncited_total", **labels) == 0


@pytest.mark.asyncio
async def test_an_uncited_answer_is_counted_once_with_its_length() -> None:
    reply = "Refunds are fine. " * 20
    service = _service(ScriptedModel(reply), version=_lenient())
    result = await _run(service)
    assert result.response is not None and result.response.outcome is Outcome.ANSWERED
    labels = {"prompt": "qa", "version": "1.0.0"}
    assert _count(service, "promptrollouts_answers_uncited_total", **labels) == 1
    assert _length(service.metrics, "sum", **labels) == len(reply)
    assert _length(service.metrics, "bucket", **labels, le="200.0") == 0
    assert _length(service.metrics, "bucket", **labels, le="400.0") == 1


@pytest.mark.asyncio
async def test_an_uncited_fallback_answer_is_uncited_too() -> None:
    service = _service(ScriptedModel("Refunds are fine.", fallback=True), version=_lenient())
    result = await _run(service)
    assert result.outcome is Outcome.FALLBACK
    labels = {"prompt": "qa", "version": "1.0.0"}
    assert _count(service, "promptrollouts_answers_uncited_total", **labels) == 1


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("Not covered by policy.", Outcome.UNKNOWN),
        ("Refunds are fine.", Outcome.UNKNOWN),
        ("I can't help with that request.", Outcome.REFUSED),
    ],
    ids=["model-says-not-covered", "uncited-under-require-citations", "model-refusal"],
)
@pytest.mark.asyncio
async def test_fixed_answers_are_neither_measured_nor_uncited(reply: str, outcome: Outcome) -> None:
    service = _service(ScriptedModel(reply))
    result = await _run(service)
    assert result.outcome is outcome
    labels = {"prompt": "qa", "version": "1.0.0"}
    assert _count(service, "promptrollouts_answers_uncited_total", **labels) == 0
    assert _length(service.metrics, "count", **labels) == 0


@pytest.mark.asyncio
async def test_failed_requests_record_no_quality_signal() -> None:
    service = _service(ScriptedModel(error=UpstreamUnavailableError("down", retry_after=1.0)))
    result = await _run(service)
    assert result.outcome is Outcome.UNAVAILABLE
    labels = {"prompt": "qa", "version": "1.0.0"}
    assert _length(service.metrics, "count", **labels) == 0
    assert _count(service, "promptrollouts_answers_uncited_total", **labels) == 0


@pytest.mark.parametrize(
    "reply",
    [
        "I can't help with that request.",
        "Ｉ ＣＡＮ'Ｔ HELP",
        "I'm sorry, but I can\u2019t\u200b discuss that [1].",
    ],
    ids=["fake-model-refusal", "full-width-shouting", "apostrophe-and-zero-width"],
)
@pytest.mark.asyncio
async def test_a_model_refusal_is_refused_with_the_versions_refusal_answer(reply: str) -> None:
    service = _service(ScriptedModel(reply))
    result = await _run(service)
    assert result.response is not None
    assert (result.response.outcome, result.response.answer) == (Outcome.REFUSED, REFUSAL)
    assert result.response.citations == []
    assert _requests(service, Outcome.REFUSED) == 1
    assert _requests(service, Outcome.ANSWERED) == 0


@pytest.mark.asyncio
async def test_an_answer_merely_containing_cant_is_answered() -> None:
    service = _service(ScriptedModel("You can't refund opened items [1]."))
    result = await _run(service)
    assert result.outcome is Outcome.ANSWERED
    assert result.response is not None and result.response.answer != EMPTY_ANSWER
