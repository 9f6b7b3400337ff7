"""The pipeline with an output contract: valid JSON, repair, invalid_output, the deadline.

Scripted chat models reply from a list (one reply per call) and may move the test's
clock, so the deadline is exercised without sleeping. The catalog and registry are the
real, in-memory ones; outcomes, problems, metrics and log events are checked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.trace import INVALID_SPAN

from api.v1alpha1 import PromptVersion
from service.answering.outcome import Outcome
from service.answering.output_contract import REPAIR_INSTRUCTION
from service.answering.pipeline import AnswerService
from service.answering.result import AnswerResult
from service.answering.schemas import AnswerRequest
from service.catalog.catalog import Catalog
from service.catalog.registry import PromptRegistry
from service.errors import InvalidOutputError, UpstreamUnavailableError
from service.http.problems import status_of
from service.llm.chat import ChatRequest, ChatResponse
from service.telemetry.metrics import Metrics
from service.telemetry.request_log import ContentMode, RequestLogger, RequestRecord

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["category", "urgent"],
    "properties": {
        "category": {"enum": ["billing", "shipping", "other"]},
        "urgent": {"type": "boolean"},
        "summary": {"type": "string"},
    },
}
VALID = '{"category": "billing", "urgent": false}'
OFF_SCHEMA = '{"category": "jane.doe@example.com", "urgent": false}'
TIMEOUT = 5.0


class Clock:
    """A monotonic clock the test (and the scripted model) moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class ScriptedModel:
    """Replies with `replies` in turn; each call may take `seconds` of the test's clock."""

    def __init__(
        self, replies: Sequence[str | Exception], clock: Clock, seconds: float = 0.0
    ) -> None:
        self.replies = list(replies)
        self.clock = clock
        self.seconds = seconds
        self.requests: list[ChatRequest] = []
        self.remaining: list[float] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        assert request.deadline is not None
        self.remaining.append(request.deadline.remaining())
        self.clock.now += self.seconds
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return ChatResponse(reply, request.model, 100, 20)


class KeptLog(RequestLogger):
    """A request log that keeps its records."""

    def __init__(self) -> None:
        super().__init__(ContentMode.REDACTED)
        self.records: list[RequestRecord] = []

    def log(self, record: RequestRecord) -> None:
        self.records.append(record)


def _version(
    *, repair: int = 1, forbidden: Sequence[str] = (), cache: bool = False
) -> PromptVersion:
    return PromptVersion.model_validate(
        {
            "apiVersion": "promptrollouts.io/v1alpha1",
            "kind": "PromptVersion",
            "metadata": {"name": "triage-1-0-0"},
            "spec": {
                "prompt": "triage",
                "version": "1.0.0",
                "owner": "team",
                "template": {
                    "system": "Classify the ticket. Reply with one JSON object.",
                    "user": "{{ question }}",
                },
                "model": {"name": "gpt-test", "timeoutSeconds": TIMEOUT},
                "guardrails": {"forbiddenPhrases": list(forbidden)},
                "output": {"format": "json", "schema": SCHEMA, "repair": repair},
                "cache": {"enabled": cache, "ttlSeconds": 60},
            },
        }
    )


def _service(model: ScriptedModel, clock: Clock, version: PromptVersion) -> AnswerService:
    metrics = Metrics()
    registry = PromptRegistry.from_resources([version], set())
    return AnswerService(
        catalog=Catalog(registry, metrics),
        retriever=_NoRetriever(),
        chat=model,
        prices={},
        metrics=metrics,
        request_log=KeptLog(),
        clock=clock,
        deadline_clock=clock,
    )


class _NoRetriever:
    async def retrieve(
        self, collection: str, question: str, top_k: int, min_score: float
    ) -> list[Any]:
        raise AssertionError("a prompt without retrieval never retrieves")


async def _run(service: AnswerService) -> AnswerResult:
    request = AnswerRequest(prompt="triage", question="I was charged twice.")
    result = await service.run(request, "req-1", "key-1")
    service.recorder.record(result, INVALID_SPAN)
    return result


def _count(service: AnswerService, name: str, **labels: str) -> float:
    labels = {"prompt": "triage", "version": "1.0.0", **labels}
    return service.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.asyncio
async def test_valid_json_is_the_answer_and_the_output() -> None:
    clock = Clock()
    model = ScriptedModel([f"```json\n{VALID}\n```"], clock)
    result = await _run(_service(model, clock, _version()))

    response = result.response
    assert response is not None and response.outcome is Outcome.ANSWERED
    assert response.output == {"category": "billing", "urgent": False}
    assert json.loads(response.answer) == response.output
    (sent,) = model.requests
    assert sent.response_format is not None
    assert (sent.response_format.name, dict(sent.response_format.schema)) == ("triage", SCHEMA)


@pytest.mark.asyncio
async def test_an_invalid_answer_is_repaired_within_the_same_deadline() -> None:
    clock = Clock()
    model = ScriptedModel([OFF_SCHEMA, VALID], clock, seconds=1.0)
    service = _service(model, clock, _version())
    result = await _run(service)

    response = result.response
    assert response is not None and response.outcome is Outcome.ANSWERED
    assert response.output == {"category": "billing", "urgent": False}
    first, repair = model.requests
    assert repair.deadline is first.deadline
    assert model.remaining == [TIMEOUT, TIMEOUT - 1.0]
    assert repair.idempotency_key == "key-1-repair-1" != first.idempotency_key
    assert [m.role for m in repair.messages] == ["system", "user", "assistant", "user"]
    assert repair.messages[2].content == OFF_SCHEMA
    assert repair.messages[3].content.startswith(REPAIR_INSTRUCTION)
    assert "$.category must be one of" in repair.messages[3].content
    # Both calls are paid for: tokens add up.
    assert (response.usage.input_tokens, response.usage.output_tokens) == (200, 40)
    assert _count(service, "promptrollouts_output_repairs_total") == 1
    assert _count(service, "promptrollouts_requests_total", outcome="answered") == 1


@pytest.mark.asyncio
async def test_invalid_twice_ends_invalid_output_a_502_counted_and_logged_redacted() -> None:
    clock = Clock()
    model = ScriptedModel([OFF_SCHEMA, "not json, jane.doe@example.com"], clock)
    service = _service(model, clock, _version())
    result = await _run(service)

    assert isinstance(result.error, InvalidOutputError)
    assert result.outcome is Outcome.INVALID_OUTPUT
    assert result.status == status_of(result.error) == 502
    assert "after 1 repair attempt(s): the answer is not valid JSON" in str(result.error)
    assert len(model.requests) == 2
    assert _count(service, "promptrollouts_requests_total", outcome="invalid_output") == 1
    assert _count(service, "promptrollouts_output_repairs_total") == 1
    log = service.request_log
    assert isinstance(log, KeptLog)
    (record,) = log.records
    assert (record.outcome, record.status, record.response) == ("invalid_output", 502, None)
    assert record.error is not None and "jane" not in record.error
    # Both calls' tokens are counted although the request failed.
    tokens = _count(service, "promptrollouts_tokens_total", model="gpt-test", direction="input")
    assert tokens == 200


@pytest.mark.asyncio
async def test_repair_zero_means_no_follow_up_call() -> None:
    clock = Clock()
    model = ScriptedModel([OFF_SCHEMA], clock)
    result = await _run(_service(model, clock, _version(repair=0)))

    assert result.outcome is Outcome.INVALID_OUTPUT
    assert "after 0 repair attempt(s)" in str(result.error)
    assert len(model.requests) == 1


@pytest.mark.asyncio
async def test_up_to_repair_times_follow_up_calls() -> None:
    clock = Clock()
    model = ScriptedModel([OFF_SCHEMA, OFF_SCHEMA, OFF_SCHEMA, VALID], clock)
    result = await _run(_service(model, clock, _version(repair=3)))

    assert result.outcome is Outcome.ANSWERED
    keys = [r.idempotency_key for r in model.requests]
    assert keys == ["key-1", "key-1-repair-1", "key-1-repair-2", "key-1-repair-3"]


@pytest.mark.asyncio
async def test_no_repair_is_started_once_the_deadline_has_passed() -> None:
    clock = Clock()
    model = ScriptedModel([OFF_SCHEMA, VALID], clock, seconds=TIMEOUT + 1)
    result = await _run(_service(model, clock, _version()))

    assert result.outcome is Outcome.INVALID_OUTPUT
    assert "no time left for a repair" in str(result.error)
    assert len(model.requests) == 1


@pytest.mark.asyncio
async def test_a_failed_repair_call_ends_invalid_output_naming_it() -> None:
    clock = Clock()
    model = ScriptedModel([OFF_SCHEMA, UpstreamUnavailableError("down", retry_after=1.0)], clock)
    result = await _run(_service(model, clock, _version()))

    assert result.outcome is Outcome.INVALID_OUTPUT
    assert "the repair call failed: UpstreamUnavailableError" in str(result.error)


@pytest.mark.asyncio
async def test_guardrails_apply_to_the_json_text() -> None:
    clock = Clock()
    answer = '{"category": "other", "urgent": false, "summary": "As an AI language model, no"}'
    model = ScriptedModel([answer], clock)
    version = _version(forbidden=["as an AI language model"])
    result = await _run(_service(model, clock, version))

    response = result.response
    assert response is not None and response.outcome is Outcome.REFUSED
    assert response.output is None
    assert "language model" not in response.answer


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("hostile", "problem"),
    [
        pytest.param(
            json.dumps({"category": "billing", "urgent": False, "summary": "x" * 10_000_000}),
            "longer than",
            id="10-MB",
        ),
        pytest.param("[" * 100_000 + "]" * 100_000, "nests deeper than", id="deeply-nested"),
    ],
)
async def test_a_hostile_answer_is_repaired_and_never_echoed_whole(
    hostile: str, problem: str
) -> None:
    clock = Clock()
    model = ScriptedModel([hostile, VALID], clock)
    result = await _run(_service(model, clock, _version()))

    assert result.outcome is Outcome.ANSWERED
    repair = model.requests[1]
    assert sum(len(m.content) for m in repair.messages) < 10_000
    assert problem in repair.messages[-1].content


@pytest.mark.asyncio
async def test_a_valid_reply_is_cached_and_its_hit_still_has_the_output() -> None:
    clock = Clock()
    model = ScriptedModel([VALID], clock)
    service = _service(model, clock, _version(cache=True))
    await _run(service)
    result = await _run(service)

    response = result.response
    assert response is not None and response.cache_hit
    assert response.output == {"category": "billing", "urgent": False}
    assert len(model.requests) == 1


@pytest.mark.asyncio
async def test_a_reply_breaking_the_contract_is_never_cached() -> None:
    clock = Clock()
    model = ScriptedModel([OFF_SCHEMA, VALID, VALID], clock)
    service = _service(model, clock, _version(cache=True))
    await _run(service)
    result = await _run(service)

    response = result.response
    assert response is not None and not response.cache_hit
    # first request: the bad reply and its repair; the second asks the model again.
    assert len(model.requests) == 3
