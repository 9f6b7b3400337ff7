"""Every shipped eval set passes on every shipped version: offline, or against the fake model.

The in-process service with its embedded defaults (extractive answerer and summarizer,
bundled MiniLM, Qdrant in memory, the default CORPORA) is asked every case, pinned to each
version of the eval set's prompt, and scored with `promptctl eval`'s own checks. A prompt
whose versions need a model (they declare ``output`` or ``tools``, which the embedded
answerer cannot honour) is asked through a second service whose MODEL_BASE_URL is the real
fake model over HTTP, with tools disabled (TOOL_ALLOWED_HOSTS empty), as prompt CI runs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fakemodel.app import FakeModelState, create_fake_model_app
from promptctl.evals.needs_model import assess_needs_model, fetch_documents
from promptctl.evals.runner import Measurer
from prompting.evals.evalset import EvalSet, parse_evalset
from prompting.evals.scoring import score_run
from service.app import create_app
from service.retrieval.embeddings import OnnxMiniLMEmbedder
from service.settings import Settings
from tests.support.servers import serve_in_thread

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVALSETS = sorted((ROOT / "evals").glob("*.yaml"))


def _settings(model_base_url: str | None) -> Settings:
    return Settings(
        prompts_dir=ROOT / "prompts",
        corpora={name: ROOT / folder for name, folder in Settings().corpora.items()},
        qdrant_path=":memory:",
        qdrant_url=None,
        model_base_url=model_base_url,
        model_api_key=None,
        embedding_base_url=None,
        redis_url=None,
        tool_allowed_hosts=[],
        log_level="WARNING",
        log_content="off",
    )


@pytest.fixture(scope="module")
def offline_service() -> Iterator[TestClient]:
    """The service with no model server: the embedded answerer replies."""
    with TestClient(create_app(_settings(None))) as client:
        yield client


@pytest.fixture(scope="module")
def fake_model() -> Iterator[tuple[str, FakeModelState]]:
    """The fake model over real HTTP, and its recorded requests."""
    state = FakeModelState()
    with serve_in_thread(create_fake_model_app(state)) as url:
        yield f"{url}/v1", state


@pytest.fixture(scope="module")
def model_service(fake_model: tuple[str, FakeModelState]) -> Iterator[TestClient]:
    """The service answering through the fake model, tools disabled."""
    with TestClient(create_app(_settings(fake_model[0]))) as client:
        yield client


def _needs_model(evalset: EvalSet) -> bool:
    needs = assess_needs_model(fetch_documents(ROOT / "prompts"), evalset.prompt)
    assert needs is not None, f"no shipped manifest declares {evalset.prompt}"
    return needs


def _versions(client: TestClient, evalset: EvalSet) -> list[str]:
    items = client.get("/v1/prompts").json()["items"]
    return sorted(i["version"] for i in items if i["prompt"] == evalset.prompt)


def test_every_shipped_prompt_has_an_eval_set() -> None:
    prompts = {parse_evalset(p.read_text(encoding="utf-8")).prompt for p in EVALSETS}
    shipped = {p.name.rsplit("-", 1)[0] for p in (ROOT / "prompts").glob("*.yaml")}
    assert shipped <= prompts


@pytest.mark.parametrize("path", EVALSETS, ids=[p.name for p in EVALSETS])
def test_shipped_eval_set_passes_on_every_version(
    request: pytest.FixtureRequest, path: Path
) -> None:
    evalset = parse_evalset(path.read_text(encoding="utf-8"))
    fixture = "model_service" if _needs_model(evalset) else "offline_service"
    service: TestClient = request.getfixturevalue(fixture)
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


def _without_annotations(schema: object) -> object:
    if isinstance(schema, dict):
        return {k: _without_annotations(v) for k, v in schema.items() if k != "description"}
    if isinstance(schema, list):
        return [_without_annotations(v) for v in schema]
    return schema


def test_order_status_cases_check_the_versions_output_contract() -> None:
    evalset = parse_evalset((ROOT / "evals" / "order-status.yaml").read_text(encoding="utf-8"))
    contracts = [
        _without_annotations(d["spec"]["output"]["schema"])
        for d in fetch_documents(ROOT / "prompts")
        if isinstance(d, dict) and d["spec"]["prompt"] == "order-status"
    ]
    assert contracts
    for case in evalset.cases:
        assert all(case.expect.json_schema == contract for contract in contracts), case.id


def test_order_status_calls_the_tool_then_answers_the_json_contract(
    model_service: TestClient, fake_model: tuple[str, FakeModelState]
) -> None:
    state = fake_model[1]
    state.requests.clear()

    response = model_service.post(
        "/v1/answers", json={"prompt": "order-status", "question": "Where is order LK-48213?"}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output"] == {"orderId": "", "status": "unknown", "message": "x"}
    first, second = (r.body for r in state.requests)
    assert [t["function"]["name"] for t in first["tools"]] == ["get_order_status"]
    (tool_message,) = (m for m in second["messages"] if m["role"] == "tool")
    assert tool_message["content"].startswith("TOOL ERROR (get_order_status)")
    assert "disabled" in tool_message["content"]
    assert second["response_format"]["type"] == "json_schema"
