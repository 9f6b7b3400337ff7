"""Building blocks for the eval tests: answers, cases and results."""

from __future__ import annotations

from typing import Any

from prompting.evals.evalset import EvalCase
from prompting.evals.graders import Measured
from prompting.evals.scoring import CaseResult, RunResult, score_run


def answer(**overrides: Any) -> dict[str, Any]:
    """A 200 response body of POST /v1/answers."""
    body: dict[str, Any] = {
        "request_id": "r1",
        "prompt": "policy-qa",
        "version": "1.0.0",
        "model": "embedded-extractive",
        "outcome": "answered",
        "answer": "Digital items can be refunded within 14 Days of purchase. [1]",
        "citations": [{"id": "digital-goods#0", "source": "digital-goods.md", "score": 0.7}],
        "usage": {"input_tokens": 300, "output_tokens": 40, "cost_usd": 0.001},
        "cache_hit": False,
        "latency_ms": 120.0,
    }
    return body | overrides


def case(case_id: str = "c1", weight: float = 1.0, **expect: Any) -> EvalCase:
    """A case with the given checks."""
    return EvalCase.model_validate(
        {"id": case_id, "question": "Refund?", "weight": weight, "expect": expect}
    )


def score_case(
    evalcase: EvalCase, response: dict[str, Any], measured: Measured | None = None
) -> CaseResult:
    """One run of `evalcase` on `response`, as a case result."""
    return CaseResult(
        case_id=evalcase.id,
        question=evalcase.question,
        weight=evalcase.weight,
        runs=[score_run(evalcase, response, measured or {})],
    )


def run(passed: bool, case_id: str = "c", **metrics: Any) -> RunResult:
    """A run that passed or failed a contains_any check."""
    return RunResult(
        passed=passed,
        outcome="answered" if passed else "unknown",
        failures=[] if passed else [f"contains_any: {case_id} missed the fact"],
        **metrics,
    )


def result(
    case_id: str, passed: bool, weight: float = 1.0, question: str = "", **metrics: Any
) -> CaseResult:
    """A one-run case result."""
    return CaseResult(
        case_id=case_id,
        question=question or f"question of {case_id}",
        weight=weight,
        runs=[run(passed, case_id, **metrics)],
    )
