"""Metrics: what a request leaves behind, and that request text never becomes a label."""

from __future__ import annotations

import random
import string

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.answering.outcome import Outcome

MANIFEST_VALUES = {
    "prompt": {"policy-qa", "faq-bot", "ticket-summarizer", "order-status"},
    "tool": {"get_order_status"},
    "version": {"1.0.0", "1.1.0"},
    "model": {"gpt-4o-mini", "gpt-4.1-nano", "embedded-extractive"},
    "collection": {"policies", "faq"},
}


def _samples(client: TestClient) -> list[tuple[str, dict[str, str], float]]:
    text = client.get("/metrics").text
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def test_labels_come_from_manifests_never_from_requests(model_client: TestClient) -> None:
    rng = random.Random(7)
    for _ in range(60):
        noise = "".join(rng.choices(string.ascii_letters + " ", k=40))
        model_client.post(
            "/v1/answers",
            json={
                "prompt": rng.choice(["policy-qa", "no-such-prompt", f"p-{rng.randrange(10**6)}"]),
                "question": f"Can I refund {noise}?",
                "user": noise,
                "variables": rng.choice([{}, {"tone": noise}, {"tone": "formal"}, {noise[:5]: 1}]),
            },
        )
    series = _samples(model_client)
    for name, labels, _ in series:
        for label, value in labels.items():
            if label in MANIFEST_VALUES:
                assert value in MANIFEST_VALUES[label], f"{name}{{{label}={value!r}}}"
    request_series = {
        tuple(sorted(labels.items()))
        for name, labels, _ in series
        if name == "promptrollouts_requests_total" and labels.get("prompt") == "policy-qa"
    }
    # 2 versions times at most the outcome enum, whatever the 60 random requests said
    assert len(request_series) <= 2 * len(Outcome)


def test_an_answer_counts_tokens_cost_and_retrieval(model_client: TestClient) -> None:
    def value(name: str, **labels: str) -> float:
        return sum(
            v
            for n, got, v in _samples(model_client)
            if n == name and all(got.get(k) == want for k, want in labels.items())
        )

    before_tokens = value("promptrollouts_tokens_total", model="gpt-4o-mini", direction="input")
    before_cost = value("promptrollouts_cost_usd_total", version="1.1.0", model="gpt-4o-mini")
    before_retrievals = value("promptrollouts_retrieval_duration_seconds_count")
    before_empty = value("promptrollouts_empty_retrievals_total", version="1.1.0")
    body = model_client.post(
        "/v1/answers",
        json={"prompt": "policy-qa", "question": "Can I refund a digital item after two weeks?"},
    ).json()
    model_client.post(
        "/v1/answers", json={"prompt": "policy-qa", "question": "What is the capital of France?"}
    )
    usage = body["usage"]
    assert (
        value("promptrollouts_tokens_total", model="gpt-4o-mini", direction="input")
        == before_tokens + usage["input_tokens"]
    )
    assert (
        value("promptrollouts_cost_usd_total", version="1.1.0", model="gpt-4o-mini")
        == before_cost + usage["cost_usd"]
    )
    assert value("promptrollouts_retrieval_duration_seconds_count") == before_retrievals + 2
    assert value("promptrollouts_empty_retrievals_total", version="1.1.0") == before_empty + 1
    assert (
        value("promptrollouts_version_weight_percent", prompt="policy-qa", version="1.1.0") == 100
    )
    assert value("promptrollouts_circuit_breaker_state", model="gpt-4o-mini") == 0
