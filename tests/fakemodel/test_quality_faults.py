"""Quality faults: refusals, unknowns, uncited answers and fixed judge scores, per model too."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.faults import Faults, decide_fault, decide_quality_reply
from fakemodel.judge import JUDGE_PREFIX
from fakemodel.quality import REFUSAL, build_degraded_answer
from tests.support.servers import serve_in_thread

pytestmark = pytest.mark.integration

MESSAGES = [
    {"role": "system", "content": "Answer from the context."},
    {"role": "user", "content": "CONTEXT:\n[1] (faq.md) Refunds take five days.\n\nQUESTION: q"},
]
JUDGE = [
    {"role": "system", "content": f"{JUDGE_PREFIX} Score the answer."},
    {"role": "user", "content": 'RUBRIC: mentions "five days"\nQUESTION: q\nANSWER: <<<no>>>'},
]


@pytest.fixture
def state() -> FakeModelState:
    return FakeModelState(seed=7)


@pytest.fixture
def client(state: FakeModelState) -> Iterator[httpx.Client]:
    with (
        serve_in_thread(create_fake_model_app(state)) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        yield http


def _answer(client: httpx.Client, model: str = "gpt-4o-mini", messages: Any = None) -> str:
    body = {"model": model, "messages": messages or MESSAGES}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    content: str = response.json()["choices"][0]["message"]["content"]
    return content


# --- validation (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param({"unknown_rate": 1.5}, "less than or equal to 1", id="unknown>1"),
        pytest.param({"uncited_rate": -0.1}, "greater than or equal to 0", id="uncited<0"),
        pytest.param({"refuse_rate": "0.5"}, "valid number", id="refuse-string"),
        pytest.param({"judge_score": 1.01}, "less than or equal to 1", id="judge>1"),
        pytest.param(
            {"unknown_rate": 0.6, "refuse_rate": 0.5},
            "refuse_rate + unknown_rate + uncited_rate + invalid_json_rate + off_schema_rate "
            "must be at most 1 (got 1.1)",
            id="sum>1",
        ),
        pytest.param({"unknown_rat": 0.1}, "Extra inputs are not permitted", id="typo"),
    ],
)
def test_invalid_quality_faults_are_named(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Faults.model_validate(raw)


@pytest.mark.parametrize(
    ("roll", "expected"),
    [
        pytest.param(0.0, "refuse", id="refuse-first"),
        pytest.param(0.099, "refuse", id="refuse-edge"),
        pytest.param(0.1, "unknown", id="unknown-from-0.1"),
        pytest.param(0.299, "unknown", id="unknown-edge"),
        pytest.param(0.31, "uncited", id="uncited-after-0.3"),
        pytest.param(0.61, None, id="healthy-after-0.6"),
        pytest.param(0.999, None, id="healthy-top"),
    ],
)
def test_rates_split_the_roll_without_overlap(roll: float, expected: str | None) -> None:
    faults = Faults(refuse_rate=0.1, unknown_rate=0.2, uncited_rate=0.3)

    assert decide_quality_reply(faults, roll) == expected


def test_quality_faults_never_touch_embeddings_or_failed_requests() -> None:
    faults = Faults(unknown_rate=1.0, status=500, error_rate=0.5)

    assert decide_fault(faults, None, "embeddings", 0.9, None, quality_roll=0.0).reply is None
    failed = decide_fault(faults, None, "chat", 0.1, None, quality_roll=0.0)
    assert (failed.failure, failed.reply) == ("status", None)
    spared = decide_fault(faults, None, "chat", 0.9, None, quality_roll=0.0)
    assert (spared.failure, spared.reply, spared.label) == (None, "unknown", "unknown")


@pytest.mark.parametrize(
    ("kind", "answer", "expected"),
    [
        pytest.param("refuse", "Refunds take five days. [1]", REFUSAL, id="refuse"),
        pytest.param("unknown", "Refunds take five days. [1]", "", id="unknown-is-empty"),
        pytest.param("uncited", "Five days [1] or ten [2].", "Five days or ten.", id="uncited"),
        pytest.param("uncited", "[1]", "1", id="only-a-citation"),
    ],
)
def test_degraded_answers(kind: Any, answer: str, expected: str) -> None:
    assert build_degraded_answer(kind, answer) == expected


# --- over HTTP ----------------------------------------------------------------------------------


def test_each_quality_fault_over_http(client: httpx.Client) -> None:
    assert _answer(client) == "Refunds take five days. [1]"
    for raw, expected in (
        ({"refuse_rate": 1.0}, "I can't help with that request."),
        ({"unknown_rate": 1.0}, ""),
        ({"uncited_rate": 1.0}, "Refunds take five days."),
    ):
        assert client.post("/admin/faults", json=raw).status_code == 200
        assert _answer(client) == expected, raw
    assert client.delete("/admin/faults").status_code == 204
    assert _answer(client) == "Refunds take five days. [1]"


def test_rates_are_close_and_reproducible_with_the_seed(client: httpx.Client) -> None:
    def run() -> list[str]:
        client.post("/admin/faults", json={"unknown_rate": 0.3, "refuse_rate": 0.1})
        return [_answer(client) for _ in range(200)]

    first, second = run(), run()
    counts = Counter(first)
    assert first == second
    assert 40 <= counts[""] <= 80
    assert 8 <= counts[REFUSAL] <= 35
    assert counts["Refunds take five days. [1]"] == 200 - counts[""] - counts[REFUSAL]


def test_judge_score_fixes_the_judgement_and_spares_answers(client: httpx.Client) -> None:
    assert '"score": 0.0' in _answer(client, messages=JUDGE)
    client.post("/admin/faults", json={"judge_score": 0.8, "refuse_rate": 1.0})

    assert _answer(client, messages=JUDGE).startswith('{"score": 0.8,')
    assert _answer(client) == REFUSAL  # the judge is never refused; answers are


def test_invalid_faults_over_http_are_a_422_naming_the_field(client: httpx.Client) -> None:
    response = client.post("/admin/faults", json={"unknown_rate": 2})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "unknown_rate"]
    assert client.get("/admin/faults").json()["unknown_rate"] == 0.0


# --- per model ----------------------------------------------------------------------------------


def test_per_model_faults_replace_the_standing_ones_for_that_model(client: httpx.Client) -> None:
    client.post("/admin/faults", json={"refuse_rate": 1.0})
    response = client.post("/admin/faults/models/gpt-4.1-nano", json={"unknown_rate": 1.0})

    assert response.status_code == 200, response.text
    assert _answer(client, "gpt-4.1-nano") == ""
    assert _answer(client, "gpt-4o-mini") == REFUSAL
    assert client.get("/admin/faults/models").json()["gpt-4.1-nano"]["unknown_rate"] == 1.0
    assert client.delete("/admin/faults/models/gpt-4.1-nano").status_code == 204
    assert _answer(client, "gpt-4.1-nano") == REFUSAL
    client.post("/admin/faults/models/gpt-4.1-nano", json={"uncited_rate": 1.0})
    assert client.delete("/admin/faults").status_code == 204  # heals every model
    assert client.get("/admin/faults/models").json() == {}
    assert _answer(client, "gpt-4.1-nano") == "Refunds take five days. [1]"


def test_per_model_rolls_do_not_depend_on_other_models_traffic(client: httpx.Client) -> None:
    def run(interleave: bool) -> list[str]:
        client.post("/admin/faults/models/gpt-4.1-nano", json={"unknown_rate": 0.5})
        answers = []
        for _ in range(40):
            if interleave:
                _answer(client, "gpt-4o-mini")
            answers.append(_answer(client, "gpt-4.1-nano"))
        return answers

    alone = run(interleave=False)
    assert run(interleave=True) == alone
    assert 5 < alone.count("") < 35


@pytest.mark.parametrize(
    ("model", "body", "status", "detail"),
    [
        pytest.param("nope", {"unknown_rate": 0.1}, 404, "does not serve 'nope'", id="unknown"),
        pytest.param(
            "gpt-4o-mini",
            {"unknown_rate": 0.1, "models": ["gpt-4o-mini"]},
            422,
            "leave models unset",
            id="models-field",
        ),
        pytest.param("gpt-4o-mini", {"refuse_rate": 3}, 422, "less than or equal", id="bad-rate"),
    ],
)
def test_bad_per_model_faults_are_refused(
    client: httpx.Client, model: str, body: dict[str, Any], status: int, detail: str
) -> None:
    response = client.post(f"/admin/faults/models/{model}", json=body)

    assert response.status_code == status
    assert detail in response.text
    assert client.get("/admin/faults/models").json() == {}
