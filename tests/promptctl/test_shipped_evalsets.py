"""Every shipped eval set passes on every shipped version, offline.

The in-process service with its embedded defaults (extractive answerer and summarizer,
bundled MiniLM, Qdrant in memory, the default CORPORA) is asked every case, pinned to each
version of the eval set's prompt, and scored with `promptctl eval`'s own checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from promptctl.evals.runner import Measurer
from prompting.evals.evalset import EvalSet, parse_evalset
from prompting.evals.scoring import score_run
from service.app import create_app
from service.retrieval.embeddings import OnnxMiniLMEmbedder
from service.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVALSETS = sorted((ROOT / "evals").glob("*.yaml"))


@pytest.fixture(scope="module")
def service() -> Iterator[TestClient]:
    settings = Settings(
        prompts_dir=ROOT / "prompts",
        corpora={name: ROOT / folder for name, folder in Settings().corpora.items()},
        qdrant_path=":memory:",
        qdrant_url=None,
        model_base_url=None,
        embedding_base_url=None,
        redis_url=None,
        log_level="WARNING",
        log_content="off",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _versions(client: TestClient, evalset: EvalSet) -> list[str]:
    items = client.get("/v1/prompts").json()["items"]
    return sorted(i["version"] for i in items if i["prompt"] == evalset.prompt)


def test_every_shipped_prompt_has_an_eval_set() -> None:
    prompts = {parse_evalset(p.read_text(encoding="utf-8")).prompt for p in EVALSETS}
    shipped = {p.name.rsplit("-", 1)[0] for p in (ROOT / "prompts").glob("*.yaml")}
    assert shipped <= prompts


@pytest.mark.parametrize("path", EVALSETS, ids=[p.name for p in EVALSETS])
def test_shipped_eval_set_passes_on_every_version(service: TestClient, path: Path) -> None:
    evalset = parse_evalset(path.read_text(encoding="utf-8"))
    versions = _versions(service, evalset)
    measurer = Measurer(embedder=OnnxMiniLMEmbedder())
    assert versions, f"{evalset.prompt} is not served"
    failures: list[str] = []
    for version in versions:
        for case in evalset.cases:
            body = {
                "prompt": evalset.prompt,
                "question": case.question,
                "variables": case.variables,
                "version": version,
            }
            if case.user is not None:
                body["user"] = case.user
            response = service.post("/v1/answers", json=body)
            answer = response.json()
            if not response.is_success:
                answer = {"status": response.status_code, **answer}
            measured = asyncio.run(measurer.measure(case, answer))  # similar_to, as eval does
            result = score_run(case, answer, measured)
            if not result.passed:
                failures.append(f"{version} {case.id}: {'; '.join(result.failures)}")
    assert not failures, "\n".join(failures)
    assert len(evalset.cases) >= 10
