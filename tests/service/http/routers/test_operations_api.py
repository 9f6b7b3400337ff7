"""GET /v1/prompts, /healthz, /readyz and /metrics."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_prompts_lists_versions_with_phase_and_weight(local_client: TestClient) -> None:
    items = local_client.get("/v1/prompts").json()["items"]
    summary = {(i["prompt"], i["version"]): (i["phase"], i["weight"]) for i in items}
    assert summary == {
        ("faq-bot", "1.0.0"): ("Superseded", 0),
        ("faq-bot", "1.1.0"): ("Stable", 100),
        ("order-status", "1.0.0"): ("Stable", 100),
        ("policy-qa", "1.0.0"): ("Superseded", 0),
        ("policy-qa", "1.1.0"): ("Stable", 100),
        ("ticket-summarizer", "1.0.0"): ("Stable", 100),
    }
    collections = {i["prompt"]: i["collection"] for i in items}
    assert collections == {
        "faq-bot": "faq",
        "policy-qa": "policies",
        "ticket-summarizer": None,
        "order-status": None,
    }


def test_health_and_readiness(local_client: TestClient) -> None:
    assert local_client.get("/healthz").json() == {"status": "ok", "detail": None}
    assert local_client.get("/readyz").status_code == 200


def test_metrics_count_answers_by_prompt_version_and_outcome(local_client: TestClient) -> None:
    def count() -> float:
        for line in local_client.get("/metrics").text.splitlines():
            if (
                line.startswith("promptrollouts_requests_total{")
                and 'outcome="unknown"' in line
                and 'prompt="policy-qa"' in line
                and 'version="1.1.0"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count()
    local_client.post("/v1/answers", json={"prompt": "policy-qa", "question": "Capital of France?"})
    assert count() == before + 1


def test_unknown_route_is_a_problem(local_client: TestClient) -> None:
    response = local_client.get("/v2/nothing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
