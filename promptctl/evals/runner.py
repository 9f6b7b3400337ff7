"""Ask the service every case on every version, ``repeat`` times, and measure the answers.

Every request is ``POST /v1/answers`` with the version pinned in the body, either to an
in-process service (``create_app(Settings())`` with its lifespan) or to a running one
(``--url``). ``similar_to`` is measured with the embedded MiniLM model (offline),
``llm_rubric`` by a judge model through the resilient client; everything else is pure
(``prompting.evals.graders``).

Errors::

    Exception
    └── EvalInputError   the run cannot start or evaluated nothing (exit 2)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from promptctl.evals.judge import call_judge
from prompting.evals.asking import build_answer_body, read_answer, read_no_response
from prompting.evals.evalset import Checks, EvalCase, EvalSet
from prompting.evals.gates import assess_servability
from prompting.evals.graders import measure_key
from prompting.evals.scoring import CaseResult, RunResult, required_runs, score_run
from service.app import create_app
from service.errors import EmbeddingError, ServiceError
from service.llm import ChatModel, OpenAIChatModel, ResilientChatModel
from service.retrieval import Embedder, OnnxMiniLMEmbedder
from service.settings import Settings

__all__ = [
    "EvalInputError",
    "Measurer",
    "fetch_versions",
    "open_client",
    "open_measurer",
    "run_evalset",
]


class EvalInputError(Exception):
    """The run cannot start (prompt, versions, service, judge) or evaluated nothing."""


@contextlib.asynccontextmanager
async def open_client(url: str | None, request_timeout: float) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running service at `url`, or of an in-process app with its lifespan."""
    if url is not None:
        async with httpx.AsyncClient(base_url=url, timeout=request_timeout) as client:
            yield client
        return
    try:
        app = create_app(Settings())
    except ValidationError as error:
        raise EvalInputError(f"invalid service settings in the environment: {error}") from error
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(app.router.lifespan_context(app))
        except ServiceError as error:
            # The same sentence `promptctl index` prints (a locked local store, ...).
            raise EvalInputError(
                f"the in-process service cannot start: {error}; or evaluate the running "
                "service instead with --url (e.g. --url http://127.0.0.1:8000)"
            ) from None
        transport = httpx.ASGITransport(app=app)
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=transport, base_url="http://promptctl-eval", timeout=request_timeout
            )
        )
        yield client


async def fetch_versions(client: httpx.AsyncClient, prompt: str) -> dict[str, dict[str, Any]]:
    """The versions of `prompt` the service has loaded (`GET /v1/prompts`), by version."""
    try:
        response = await client.get("/v1/prompts")
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise EvalInputError(f"cannot list prompts at {client.base_url}: {error}") from error
    items: list[dict[str, Any]] = response.json()["items"]
    versions = {str(item["version"]): item for item in items if item["prompt"] == prompt}
    if not versions:
        loaded = ", ".join(sorted({str(item["prompt"]) for item in items})) or "none"
        raise EvalInputError(f"prompt {prompt!r} is not loaded; loaded prompts: {loaded}")
    return versions


def _check_servable(prompt: str, versions: Sequence[str], available: dict[str, Any]) -> None:
    missing = [v for v in versions if v not in available]
    if missing:
        raise EvalInputError(
            f"{prompt} has no version {', '.join(missing)}; loaded versions: {', '.join(available)}"
        )
    invalid = [v for v in versions if available[v].get("phase") == "Invalid"]
    if invalid:
        raise EvalInputError(
            "; ".join(
                f"{prompt} {v} cannot be served: it is Invalid "
                f"({available[v].get('message') or 'no reason given'})"
                for v in invalid
            )
        )


async def ask(
    client: httpx.AsyncClient, prompt: str, case: EvalCase, version: str
) -> dict[str, Any]:
    """The answer body, or a problem body (`status`, `title`, `detail`) for any failure."""
    body = build_answer_body(prompt, case, version)
    try:
        response = await client.post("/v1/answers", json=body)
    except httpx.HTTPError as error:
        return read_no_response(error)
    return read_answer(response.status_code, response.text)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


@dataclass
class Measurer:
    """Measures what `similar_to` and `llm_rubric` need for one answer."""

    embedder: Embedder | None = None
    judge: ChatModel | None = None
    judge_model: str = ""
    judge_timeout: float = 60.0
    _references: dict[str, list[float]] = field(default_factory=dict)

    async def similarity(self, reference: str, answer: str) -> float | str:
        """Cosine similarity of the two texts' embeddings."""
        if self.embedder is None:
            return "no embedding model"
        if not answer.strip():
            return 0.0
        try:
            if reference not in self._references:
                (self._references[reference],) = await self.embedder.embed([reference])
            (vector,) = await self.embedder.embed([answer])
        except EmbeddingError as error:
            return f"the embedding model failed: {error}"
        return round(_cosine(self._references[reference], vector), 6)

    async def measure(self, case: EvalCase, response: dict[str, Any]) -> dict[str, float | str]:
        """Scores by measure key for the case's similarity and rubric checks."""
        if "outcome" not in response:
            return {}
        answer = str(response.get("answer", ""))
        measured: dict[str, float | str] = {}
        sides: list[tuple[Checks, bool]] = [(case.expect, False)]
        if case.expect.negated is not None:
            sides.append((case.expect.negated, True))
        for checks, negated in sides:
            if checks.similar_to is not None:
                key = measure_key("similar_to", negated)
                measured[key] = await self.similarity(checks.similar_to.text, answer)
            if checks.llm_rubric is not None:
                key = measure_key("llm_rubric", negated)
                if self.judge is None:
                    measured[key] = "no judge model"
                    continue
                measured[key] = await call_judge(
                    self.judge,
                    self.judge_model,
                    checks.llm_rubric.rubric,
                    case.question,
                    answer,
                    self.judge_timeout,
                )
        return measured


async def run_evalset(
    client: httpx.AsyncClient,
    evalset: EvalSet,
    versions: Sequence[str],
    *,
    measurer: Measurer,
    concurrency: int = 4,
    repeat: int = 1,
    quorum: float = 1.0,
) -> dict[str, list[CaseResult]]:
    """Every case on every version `repeat` times, at most `concurrency` requests at once."""
    order = list(dict.fromkeys(versions))
    _check_servable(evalset.prompt, order, await fetch_versions(client, evalset.prompt))
    gate = asyncio.Semaphore(concurrency)

    async def run(case: EvalCase, version: str) -> RunResult:
        async with gate:
            response = await ask(client, evalset.prompt, case, version)
            return score_run(case, response, await measurer.measure(case, response))

    # Alternate which version asks a case first, so warm-up (caches, lazy loading) is not
    # always paid by the same version and its latency stays comparable.
    jobs = [
        (version, index)
        for round_ in range(repeat)
        for index in range(len(evalset.cases))
        for version in (order if (index + round_) % 2 == 0 else order[::-1])
    ]
    scored = await asyncio.gather(*(run(evalset.cases[i], v) for v, i in jobs))
    runs: dict[tuple[str, int], list[RunResult]] = {}
    for (version, index), result in zip(jobs, scored, strict=True):
        runs.setdefault((version, index), []).append(result)
    required = required_runs(repeat, quorum)
    results = {
        version: [
            CaseResult(
                case_id=case.id,
                question=case.question,
                weight=case.weight,
                runs=runs[(version, index)],
                required=required,
            )
            for index, case in enumerate(evalset.cases)
        ]
        for version in order
    }
    problems = [p for v in order if (p := assess_servability(v, results[v])) is not None]
    if problems:
        raise EvalInputError(f"{evalset.prompt}: " + "; ".join(problems))
    return results


@contextlib.asynccontextmanager
async def open_measurer(
    evalset: EvalSet, judge_model: str | None, judge_url: str | None, judge_timeout: float
) -> AsyncIterator[Measurer]:
    """What the eval set's `similar_to` and `llm_rubric` checks need, loaded only if used.

    The judge is an OpenAI-compatible server (`judge_url`, else MODEL_BASE_URL, with
    MODEL_API_KEY) behind the service's resilience layer, configured from the settings.
    """
    embedder: Embedder | None = OnnxMiniLMEmbedder() if evalset.uses("similar_to") else None
    if not evalset.uses("llm_rubric"):
        yield Measurer(embedder=embedder)
        return
    try:
        settings = Settings()
    except ValidationError as error:
        raise EvalInputError(f"invalid settings in the environment: {error}") from error
    base_url = judge_url or settings.model_base_url
    if not base_url or not judge_model:
        raise EvalInputError(
            "llm_rubric checks need a judge: pass --judge-model NAME, and --judge-url URL "
            "or MODEL_BASE_URL (an OpenAI-compatible server)"
        )
    key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    async with httpx.AsyncClient(timeout=httpx.Timeout(judge_timeout, connect=5.0)) as http:
        judge = ResilientChatModel(OpenAIChatModel(http, base_url, key), settings.resilience)
        yield Measurer(
            embedder=embedder, judge=judge, judge_model=judge_model, judge_timeout=judge_timeout
        )
