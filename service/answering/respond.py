"""The answer's response (pure): the outcome, the text, its citations, usage and cost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.answering.call import AnswerCall
from service.answering.outcome import Outcome
from service.answering.result import cost_usd
from service.answering.schemas import AnswerResponse, Citation, Usage
from service.retrieval.search import Passage
from service.settings import ModelPrice

__all__ = ["build_answer_response"]


def build_answer_response(
    call: AnswerCall,
    outcome: Outcome,
    answer: str,
    cited: list[Passage],
    *,
    prices: Mapping[str, ModelPrice],
    elapsed_seconds: float,
    output: Any = None,
) -> AnswerResponse:
    """The response to `call`; a reply from the cache costs (and counts) no tokens."""
    reply = call.reply
    input_tokens = reply.input_tokens if reply and not reply.cache_hit else 0
    output_tokens = reply.output_tokens if reply and not reply.cache_hit else 0
    model = reply.model if reply else None
    return AnswerResponse(
        request_id=call.request_id,
        prompt=call.served.prompt,
        version=call.served.version,
        model=model,
        outcome=outcome,
        answer=answer,
        output=output,
        citations=[
            Citation(id=p.passage_id, source=p.source, score=round(p.score, 4)) for p in cited
        ],
        usage=Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd(prices, model, input_tokens, output_tokens) if model else 0.0,
        ),
        cache_hit=bool(reply and reply.cache_hit),
        latency_ms=round(elapsed_seconds * 1000, 2),
    )
