"""One answer, start to finish: choose a version, validate, retrieve, render, call, check."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from service.chat import ChatModel, ChatRequest
from service.guardrails import assess_answer
from service.outcome import Outcome
from service.registry import PromptRegistry, ServedVersion
from service.rendering import render_messages
from service.retrieval import Passage, Retriever, build_context
from service.schemas import AnswerRequest, AnswerResponse, Citation, Usage
from service.settings import ModelPrice
from service.variables import resolve_variables

__all__ = ["AnswerService", "cost_usd"]


def cost_usd(
    prices: Mapping[str, ModelPrice], model: str, input_tokens: int, output_tokens: int
) -> float:
    """What one call cost, from the settings' price table; unlisted models cost 0 (pure)."""
    price = prices.get(model)
    if price is None:
        return 0.0
    total = input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok
    return round(total / 1_000_000, 8)


@dataclass
class AnswerService:
    """Answers questions with the registry's versions, the retriever and a chat model."""

    registry: PromptRegistry
    retriever: Retriever
    chat: ChatModel
    prices: Mapping[str, ModelPrice]
    clock: Callable[[], float] = time.perf_counter

    async def answer(self, request: AnswerRequest, request_id: str) -> AnswerResponse:
        """Answer `request`; raises ServiceError subclasses for the problem handlers."""
        started = self.clock()
        served = self.registry.select(request.prompt, request.version, request.user or request_id)
        spec = served.resource.spec
        values = resolve_variables(spec.variables, request.variables)
        passages: list[Passage] = []
        context = ""
        if spec.retrieval is not None:
            retrieved = await self.retriever.retrieve(
                spec.retrieval.collection,
                request.question,
                spec.retrieval.top_k,
                spec.retrieval.min_score,
            )
            context, passages = build_context(retrieved, spec.retrieval.max_context_tokens)
            if not passages:
                return self._respond(
                    served=served,
                    request_id=request_id,
                    started=started,
                    model=None,
                    outcome=Outcome.UNKNOWN,
                    answer=spec.retrieval.empty_answer,
                    cited=[],
                    input_tokens=0,
                    output_tokens=0,
                )
        assert served.compiled is not None  # the registry never selects an Invalid version
        messages = render_messages(
            served.compiled, {**values, "question": request.question, "context": context}
        )
        reply = await self.chat.complete(
            ChatRequest(
                model=spec.model.name,
                messages=messages,
                temperature=spec.model.temperature,
                max_tokens=spec.model.max_tokens,
                timeout_seconds=spec.model.timeout_seconds,
                question=request.question,
                passages=passages,
                user=request.user,
            )
        )
        empty_answer = spec.retrieval.empty_answer if spec.retrieval else ""
        verdict = assess_answer(reply.text, passages, spec.guardrails, empty_answer)
        return self._respond(
            served=served,
            request_id=request_id,
            started=started,
            model=reply.model,
            outcome=verdict.outcome,
            answer=verdict.answer,
            cited=verdict.cited,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
        )

    def _respond(
        self,
        *,
        served: ServedVersion,
        request_id: str,
        started: float,
        model: str | None,
        outcome: Outcome,
        answer: str,
        cited: list[Passage],
        input_tokens: int,
        output_tokens: int,
    ) -> AnswerResponse:
        return AnswerResponse(
            request_id=request_id,
            prompt=served.prompt,
            version=served.version,
            model=model,
            outcome=outcome,
            answer=answer,
            citations=[
                Citation(id=p.passage_id, source=p.source, score=round(p.score, 4)) for p in cited
            ],
            usage=Usage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost_usd(self.prices, model, input_tokens, output_tokens)
                if model
                else 0.0,
            ),
            latency_ms=round((self.clock() - started) * 1000, 2),
        )
