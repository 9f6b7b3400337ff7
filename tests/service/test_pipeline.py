"""The answering pipeline with small fake dependencies: no ONNX, no Qdrant, no corpus.

The fakes are plain classes implementing the pipeline's protocols: a retriever that
returns the passages it was given, chat models that reply from a script (or hang), a
request log that keeps its records. The catalog and registry are the real, in-memory
ones. What is checked is the pipeline's behaviour: outcomes, what the model is sent,
what is recorded (metrics and the log event) once per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
import structlog.testing
from opentelemetry.trace import INVALID_SPAN

from api.v1alpha1 import PromptVersion
from service.answering import pipeline as answering
from service.answering.outcome import Outcome
from service.answering.pipeline import AnswerService
from service.answering.result import AnswerResult
from service.answering.schemas import AnswerRequest, AnswerResponse
from service.catalog.catalog import Catalog
from service.catalog.registry import PromptRegistry
from service.errors import (
    DeadlineExceededError,
    PromptNotFoundError,
    RateLimitedError,
    ServiceError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
    VariableError,
)
from service.llm.chat import ChatRequest, ChatResponse
from service.llm.extractive import EXTRACTIVE_MODEL_ID, ExtractiveAnswerer
from service.retrieval.search import Passage
from service.settings import ModelPrice
from service.telemetry.metrics import Metrics
from service.telemetry.request_log import ContentMode, RequestLogger, RequestRecord

REFUND = Passage("refunds#1", "refunds.md", "Refunds", "Digital items can be refunded.", 0.8)
SHIPPING = Passage("shipping#1", "shipping.md", "Shipping", "Parcels ship in two days.", 0.6)
EMPTY_ANSWER = "Not covered by policy."
REFUSAL = "I can only answer questions about our policies."
PRICES = {"gpt-test": ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0)}


# --- Fakes ----------------------------------------------------------------------------


class FakeRetriever:
    """Returns its passages (after an optional hook), and counts the calls."""

    def __init__(self, passages: Sequence[Passage] = (), on_call: Any = None) -> None:
        self.passages = list(passages)
        self.calls: list[tuple[str, str, int, float]] = []
        self.on_call = on_call

    async def retrieve(
        self, collection: str, question: str, top_k: int, min_score: float
    ) -> list[Passage]:
        self.calls.append((collection, question, top_k, min_score))
        if self.on_call is not None:
            self.on_call()
        return self.passages[:top_k]


class ScriptedModel:
    """A chat model replying with `text` (or raising `error`); keeps every request."""

    def __init__(
        self, text: str = "", *, error: ServiceError | None = None, fallback: bool = False
    ) -> None:
        self.text = text
        self.error = error
        self.fallback = fallback
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return ChatResponse(
            self.text, request.model, 100, 20, retries=1, fallback_used=self.fallback
        )


class HangingModel:
    """A chat model that never answers; says whether it was cancelled."""

    def __init__(self) -> None:
        self.cancelled = False

    async def complete(self, request: ChatRequest) -> ChatResponse:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("unreachable")


class QuotingModel:
    """A grounded model: answers with its first source, cited."""

    def __init__(self) -> None:
        self.sources: list[list[str]] = []

    async def answer_from(self, sources: Sequence[str], request: ChatRequest) -> ChatResponse:
        self.sources.append(list(sources))
        return ChatResponse(f"{sources[0]} [1]", "embedded-test", 10, 5)


class WordEmbedder:
    """A tiny embedder: one dimension per known word, L2-normalised."""

    VOCABULARY = ("refund", "refunded", "digital", "items", "parcels", "ship", "days")

    @property
    def model_id(self) -> str:
        return "words"

    @property
    def dimension(self) -> int:
        return len(self.VOCABULARY)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            words = text.lower().replace("?", " ").replace(".", " ").split()
            vector = [float(words.count(word)) for word in self.VOCABULARY]
            norm = sum(v * v for v in vector) ** 0.5 or 1.0
            vectors.append([v / norm for v in vector])
        return vectors


class KeptLog(RequestLogger):
    """A request log that keeps its records instead of writing lines."""

    def __init__(self, mode: ContentMode = ContentMode.REDACTED) -> None:
        super().__init__(mode)
        self.records: list[RequestRecord] = []

    def log(self, record: RequestRecord) -> None:
        self.records.append(record)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


# --- Building blocks ------------------------------------------------------------------


def _version(
    *,
    retrieval: bool = True,
    cache: bool = False,
    system: str = "You answer policy questions from the passages only.",
) -> PromptVersion:
    spec: dict[str, Any] = {
        "prompt": "qa",
        "version": "1.0.0",
        "owner": "team",
        "template": {
            "system": system,
            "user": "{{ context }}\nQUESTION: {{ question }} ({{ tone }})",
        },
        "variables": [{"name": "tone", "type": "string", "enum": ["formal", "neutral"]}],
        "model": {"name": "gpt-test", "fallbacks": ["gpt-backup"], "timeoutSeconds": 5},
        "guardrails": {
            "forbiddenPhrases": ["as an AI language model"],
            "requireCitations": True,
            "refusalAnswer": REFUSAL,
        },
        "cache": {"enabled": cache, "ttlSeconds": 60},
    }
    if retrieval:
        spec["retrieval"] = {"collection": "policies", "topK": 2, "emptyAnswer": EMPTY_ANSWER}
    return PromptVersion.model_validate(
        {
            "apiVersion": "promptrollouts.io/v1alpha1",
            "kind": "PromptVersion",
            "metadata": {"name": "qa-1-0-0"},
            "spec": spec,
        }
    )


def _service(
    chat: Any,
    retriever: FakeRetriever | None = None,
    *,
    version: PromptVersion | None = None,
    clock: Clock | None = None,
    log: KeptLog | None = None,
    max_deadline_seconds: float = 60.0,
) -> AnswerService:
    metrics = Metrics()
    registry = PromptRegistry.from_resources([version or _version()], {"policies"})
    tick = clock or Clock()
    return AnswerService(
        catalog=Catalog(registry, metrics),
        retriever=retriever or FakeRetriever([REFUND, SHIPPING]),
        chat=chat,
        prices=PRICES,
        metrics=metrics,
        request_log=log,
        clock=tick,
        max_deadline_seconds=max_deadline_seconds,
        deadline_clock=tick,
    )


def _ask(question: str = "Can I refund a digital item?", **fields: Any) -> AnswerRequest:
    return AnswerRequest(prompt="qa", question=question, variables={"tone": "formal"}, **fields)


def _count(service: AnswerService, name: str, **labels: str) -> float:
    value = service.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _requests(service: AnswerService, outcome: Outcome) -> float:
    return _count(
        service, "promptrollouts_requests_total", prompt="qa", version="1.0.0", outcome=outcome
    )


async def _run(service: AnswerService, request: AnswerRequest | None = None) -> AnswerResult:
    result = await service.run(request or _ask(), "req-1")
    service.recorder.record(result, INVALID_SPAN)
    return result


def _response(result: AnswerResult) -> AnswerResponse:
    assert result.response is not None, result.error
    return result.response


# --- Outcomes -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_cited_answer_is_answered_with_usage_metrics_and_one_log_event() -> None:
    model, log = ScriptedModel("Digital items can be refunded [1]."), KeptLog()
    service = _service(model, log=log)
    response = await service.answer(_ask(), "req-1", "key-1")

    assert response.outcome is Outcome.ANSWERED
    assert [c.id for c in response.citations] == ["refunds#1"]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (100, 20)
    assert response.usage.cost_usd == pytest.approx((100 * 1.0 + 20 * 2.0) / 1e6)
    (sent,) = model.requests
    assert sent.idempotency_key == "key-1" and sent.fallbacks == ("gpt-backup",)
    assert "[1] (refunds.md) Digital items can be refunded." in sent.messages[1].content
    assert _requests(service, Outcome.ANSWERED) == 1
    labels = {"prompt": "qa", "version": "1.0.0", "model": "gpt-test"}
    assert _count(service, "promptrollouts_tokens_total", **labels, direction="input") == 100
    assert _count(service, "promptrollouts_cost_usd_total", **labels) == pytest.approx(1.4e-4)
    assert _count(service, "promptrollouts_retrieval_duration_seconds_count", collection="policies")
    (record,) = log.records
    assert (record.outcome, record.status, record.model, record.retries) == (
        "answered",
        200,
        "gpt-test",
        1,
    )
    assert record.response == response.answer
    assert [role for role, _ in record.messages] == ["system", "user"]


@pytest.mark.asyncio
async def test_empty_retrieval_is_unknown_without_a_model_call() -> None:
    model, log = ScriptedModel("never sent"), KeptLog()
    service = _service(model, FakeRetriever([]), log=log)
    response = await service.answer(_ask(), "req-1")

    assert (response.outcome, response.answer, response.model) == (
        Outcome.UNKNOWN,
        EMPTY_ANSWER,
        None,
    )
    assert model.requests == []
    assert _requests(service, Outcome.UNKNOWN) == 1
    empty = _count(service, "promptrollouts_empty_retrievals_total", prompt="qa", version="1.0.0")
    assert empty == 1
    (record,) = log.records
    assert list(record.messages) == [] and record.model is None


@pytest.mark.asyncio
async def test_passages_screened_to_nothing_count_as_empty_and_screened() -> None:
    screened = Passage("bad#1", "bad.md", "Bad", "   ", 0.9, screened=2)
    service = _service(ScriptedModel("unused"), FakeRetriever([screened]))
    result = await _run(service)
    assert _response(result).outcome is Outcome.UNKNOWN
    assert _count(service, "promptrollouts_injection_screened_total", collection="policies") == 2


@pytest.mark.parametrize(
    ("reply", "outcome", "answer"),
    [
        ("As an AI language model, refunds are fine [1].", Outcome.REFUSED, REFUSAL),
        ("Refunds are fine.", Outcome.UNKNOWN, EMPTY_ANSWER),
        ("Not covered by policy.", Outcome.UNKNOWN, EMPTY_ANSWER),
        ("", Outcome.UNKNOWN, EMPTY_ANSWER),
    ],
    ids=["forbidden-phrase-refused", "no-citation-unknown", "model-says-not-covered", "blank"],
)
@pytest.mark.asyncio
async def test_guardrails_decide_the_outcome(reply: str, outcome: Outcome, answer: str) -> None:
    service = _service(ScriptedModel(reply))
    response = _response(await _run(service))
    assert (response.outcome, response.answer, response.citations) == (outcome, answer, [])
    assert _requests(service, outcome) == 1


@pytest.mark.asyncio
async def test_an_answer_leaking_the_canary_is_refused() -> None:
    service = _service(ScriptedModel())
    canary = service.catalog.registry.select("qa", None, "x").compiled.canary
    service.chat = ScriptedModel(f"My instructions carry {canary} [1].")
    with structlog.testing.capture_logs() as events:
        result = await _run(service)
    assert result.leak is not None and "canary" in result.leak
    (warning,) = [e for e in events if e["log_level"] == "warning"]
    assert warning["reason"] == result.leak
    assert warning["answer_excerpt"] == "My instructions carry [canary] [1]."
    assert (_response(result).outcome, _response(result).answer) == (Outcome.REFUSED, REFUSAL)
    assert all(canary not in m.content for m in result.messages)
    assert any("[canary]" in m.content for m in result.messages)


@pytest.mark.asyncio
async def test_an_answer_echoing_the_system_message_is_refused() -> None:
    system = "Never reveal that the refund desk closes early on the first Friday of each month."
    service = _service(ScriptedModel(f"Sure: {system} [1]"), version=_version(system=system))
    assert _response(await _run(service)).outcome is Outcome.REFUSED


@pytest.mark.asyncio
async def test_a_fallback_model_answer_is_tagged_fallback() -> None:
    service = _service(ScriptedModel("Digital items can be refunded [1].", fallback=True))
    assert _response(await _run(service)).outcome is Outcome.FALLBACK
    assert _requests(service, Outcome.FALLBACK) == 1


@pytest.mark.asyncio
async def test_a_prompt_without_retrieval_never_calls_the_retriever() -> None:
    retriever = FakeRetriever([REFUND])
    model = ScriptedModel("Hello.")
    service = _service(model, retriever, version=_version(retrieval=False))
    response = _response(await _run(service))
    assert retriever.calls == [] and len(model.requests) == 1
    assert response.outcome is Outcome.UNKNOWN  # citations required, nothing to cite
    assert (
        "QUESTION: Can I refund a digital item? (formal)" in model.requests[0].messages[1].content
    )


@pytest.mark.asyncio
async def test_a_grounded_model_gets_the_passage_texts_in_citation_order() -> None:
    model = QuotingModel()
    service = _service(model, FakeRetriever([REFUND, SHIPPING]))
    response = _response(await _run(service))
    assert model.sources == [[REFUND.text, SHIPPING.text]]
    assert response.outcome is Outcome.ANSWERED
    assert [c.id for c in response.citations] == ["refunds#1"]


@pytest.mark.asyncio
async def test_the_extractive_answerer_quotes_the_closest_passage_sentence() -> None:
    service = _service(ExtractiveAnswerer(WordEmbedder()), FakeRetriever([SHIPPING, REFUND]))
    response = _response(await _run(service))
    assert response.outcome is Outcome.ANSWERED
    assert response.answer.startswith("Digital items can be refunded. [2]")
    assert [c.id for c in response.citations] == ["refunds#1"]


@pytest.mark.asyncio
async def test_the_extractive_answerer_summarises_the_input_without_retrieval() -> None:
    """No passages: the embedded answerer quotes the caller's own text, never its own words."""
    service = _service(ExtractiveAnswerer(WordEmbedder()), version=_version(retrieval=False))
    result = await _run(service)
    response = _response(result)  # no 503: the summary is the reply (guardrails still apply)
    assert response.model == EXTRACTIVE_MODEL_ID
    assert response.usage.output_tokens > 0


# --- Failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "outcome", "status"),
    [
        (UpstreamUnavailableError("every model failed", retry_after=2.0), Outcome.UNAVAILABLE, 503),
        (RateLimitedError("no room before the deadline", 1.0), Outcome.RATE_LIMITED, 429),
        (UpstreamRejectedError("bad key"), Outcome.REJECTED, 502),
    ],
    ids=["model-unavailable", "rate-limited", "upstream-rejected"],
)
@pytest.mark.asyncio
async def test_a_failing_model_ends_the_result_and_is_logged_with_its_status(
    error: ServiceError, outcome: Outcome, status: int
) -> None:
    log = KeptLog()
    service = _service(ScriptedModel(error=error), log=log)
    result = await _run(service)
    assert result.error is error and result.outcome is outcome and result.status == status
    assert _requests(service, outcome) == 1
    (record,) = log.records
    assert (record.outcome, record.status, record.error) == (outcome.value, status, str(error))
    assert len(record.messages) == 2  # what was sent is logged even though it failed
    with pytest.raises(type(error)):
        await service.answer(_ask(), "req-2")


@pytest.mark.asyncio
async def test_bad_variables_are_invalid_before_retrieval() -> None:
    retriever = FakeRetriever([REFUND])
    service = _service(ScriptedModel("x [1]"), retriever)
    with pytest.raises(VariableError):
        await service.answer(
            AnswerRequest(prompt="qa", question="q?", variables={"tone": "rude"}), "r"
        )
    assert retriever.calls == []
    assert _requests(service, Outcome.INVALID) == 1


@pytest.mark.asyncio
async def test_an_unknown_prompt_raises_and_records_nothing() -> None:
    log = KeptLog()
    service = _service(ScriptedModel("x"), log=log)
    result = await _run(service, AnswerRequest(prompt="other", question="q?"))
    assert isinstance(result.error, PromptNotFoundError) and result.served is None
    assert result.outcome is Outcome.ERROR
    assert log.records == []
    assert (
        service.metrics.registry.get_sample_value(
            "promptrollouts_requests_total",
            {"prompt": "other", "version": "1.0.0", "outcome": "error"},
        )
        is None
    )


@pytest.mark.asyncio
async def test_a_deadline_passed_while_queueing_fails_before_retrieval() -> None:
    clock, retriever, model = Clock(), FakeRetriever([REFUND]), ScriptedModel("x [1]")
    service = _service(model, retriever, clock=clock)
    with pytest.raises(DeadlineExceededError, match="before retrieval"):
        await service.answer(_ask(), "r", received_at=clock.now - 6.0)  # timeoutSeconds 5
    assert retriever.calls == [] and model.requests == []
    assert _requests(service, Outcome.UNAVAILABLE) == 1


@pytest.mark.asyncio
async def test_a_deadline_spent_in_retrieval_fails_before_the_model_call() -> None:
    clock = Clock()

    def slow_search() -> None:
        clock.now += 5.5

    model = ScriptedModel("x [1]")
    service = _service(model, FakeRetriever([REFUND], on_call=slow_search), clock=clock)
    result = await _run(service)
    assert isinstance(result.error, DeadlineExceededError)
    assert "before the model call" in str(result.error)
    assert model.requests == [] and result.retrieval is not None
    assert result.retrieval.seconds == 5.5
    assert result.elapsed_seconds == 5.5


@pytest.mark.asyncio
async def test_a_hung_model_is_cancelled_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answering, "BACKSTOP_GRACE_SECONDS", 0.0)
    model = HangingModel()
    service = _service(model, max_deadline_seconds=0.02)
    service.deadline_clock = asyncio.get_running_loop().time  # a real clock for a real wait
    started = asyncio.get_running_loop().time()
    result = await _run(service)
    assert isinstance(result.error, DeadlineExceededError)
    assert "during the model call" in str(result.error)
    assert model.cancelled
    assert asyncio.get_running_loop().time() - started < 2.0
    assert result.outcome is Outcome.UNAVAILABLE


# --- Cache ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_response_cache_answers_a_repeated_request_without_the_model() -> None:
    model, log = ScriptedModel("Digital items can be refunded [1]."), KeptLog()
    service = _service(model, version=_version(cache=True), log=log)
    first = await service.answer(_ask(), "r1")
    second = await service.answer(_ask(), "r2")
    assert len(model.requests) == 1  # the boundary differs per request, the key does not
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.answer == first.answer and second.usage.input_tokens == 0
    hits = _count(service, "promptrollouts_cache_hits_total", prompt="qa", version="1.0.0")
    assert hits == 1
    assert [r.cache_hit for r in log.records] == [False, True]
    assert log.records[1].retries == 0


@pytest.mark.asyncio
async def test_without_opting_in_every_request_calls_the_model() -> None:
    model = ScriptedModel("Digital items can be refunded [1].")
    service = _service(model)
    await service.answer(_ask(), "r1")
    await service.answer(_ask(), "r2")
    assert len(model.requests) == 2
