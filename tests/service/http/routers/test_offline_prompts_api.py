"""The shipped prompts offline: ticket-summarizer (no retrieval) and faq-bot (collection faq).

Embedded defaults (extractive answerer and summarizer, MiniLM, Qdrant in memory), then the
fake model over real HTTP; per-variable limits: a 16,000-character ticket gets through.
"""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from fakemodel.answers import NOT_COVERED
from fakemodel.app import FakeModelState
from service.llm.summarizer import split_text

TICKET = (
    "Hello Larkspur team,\n"
    "My parcel arrived this morning and the glass vase inside was broken into three pieces.\n"
    "The outer box was crushed on one corner, so I think it was damaged during delivery.\n"
    "I have attached photos of the broken vase and of the crushed box.\n"
    "Could you send me a replacement vase? I would rather have a replacement than a refund.\n"
    "Order number: LK-50177.\n"
    "Best regards, Priya"
)


def _summarize(client: TestClient, ticket: str, **variables: object) -> dict[str, object]:
    response = client.post(
        "/v1/answers",
        json={
            "prompt": "ticket-summarizer",
            "question": "Summarize this ticket.",
            "variables": {"ticket": ticket, **variables},
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _words(text: str) -> set[str]:
    return set(re.findall(r"[\w'-]+", text.casefold()))


def test_ticket_summarizer_answers_offline_with_ticket_sentences(local_client: TestClient) -> None:
    body = _summarize(local_client, TICKET, audience="customer", maxBullets=2)

    assert (body["outcome"], body["model"], body["citations"]) == (
        "answered",
        "embedded-extractive",
        [],
    )
    answer = str(body["answer"])
    assert "broken" in answer
    sentences = [s for s in split_text([TICKET]) if s in answer]
    assert answer == " ".join(sentences)  # whole ticket sentences, in the ticket's order
    assert _words(answer) <= _words(TICKET)  # no invented word, and not the question's
    assert len(answer) <= 300 * 4  # the version's maxTokens


def test_a_16000_character_ticket_gets_through_even_json_escaped(local_client: TestClient) -> None:
    sentence = "Посылка по заказу LK-50177 так и не пришла 📦, помогите пожалуйста. "
    ticket = (sentence * (16_000 // len(sentence) + 1))[:16_000]
    body = json.dumps(  # ensure_ascii, as many clients send it: 6-12 bytes a character
        {
            "prompt": "ticket-summarizer",
            "question": "Summarize this ticket.",
            "variables": {"ticket": ticket},
        }
    ).encode()
    assert len(ticket) == 16_000 and len(body) > 64 * 1024

    response = local_client.post(
        "/v1/answers", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "answered"
    assert "LK-50177" in response.json()["answer"]


def test_variable_limits_are_per_variable(local_client: TestClient) -> None:
    too_long = local_client.post(
        "/v1/answers",
        json={
            "prompt": "ticket-summarizer",
            "question": "Summarize this ticket.",
            "variables": {"ticket": "x" * 16_001},
        },
    )
    assert too_long.status_code == 422
    assert [(e["variable"], e["rule"]) for e in too_long.json()["errors"]] == [
        ("ticket", "maxLength")
    ]
    long_question = local_client.post(
        "/v1/answers",
        json={
            "prompt": "ticket-summarizer",
            "question": "x" * 4001,
            "variables": {"ticket": TICKET},
        },
    )
    assert long_question.status_code == 422
    assert "question" in long_question.text


@pytest.mark.parametrize(
    ("variables", "rule"),
    [
        pytest.param({"audience": "manager"}, ("audience", "enum"), id="audience-enum"),
        pytest.param({"maxBullets": 0}, ("maxBullets", "minimum"), id="bullets-minimum"),
        pytest.param({"maxBullets": "3"}, ("maxBullets", "type"), id="bullets-type"),
    ],
)
def test_ticket_summarizer_checks_its_variables(
    local_client: TestClient, variables: dict[str, object], rule: tuple[str, str]
) -> None:
    response = local_client.post(
        "/v1/answers",
        json={
            "prompt": "ticket-summarizer",
            "question": "Summarize this ticket.",
            "variables": {"ticket": TICKET, **variables},
        },
    )
    assert response.status_code == 422
    assert [(e["variable"], e["rule"]) for e in response.json()["errors"]] == [rule]


def test_ticket_without_its_required_variable_is_422(local_client: TestClient) -> None:
    response = local_client.post(
        "/v1/answers", json={"prompt": "ticket-summarizer", "question": "Summarize."}
    )
    assert response.status_code == 422
    assert [(e["variable"], e["rule"]) for e in response.json()["errors"]] == [
        ("ticket", "required")
    ]


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_faq_bot_answers_from_its_own_collection(local_client: TestClient, version: str) -> None:
    response = local_client.post(
        "/v1/answers",
        json={"prompt": "faq-bot", "version": version, "question": "Do gift cards expire?"},
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["outcome"] == "answered"
    assert body["citations"][0]["source"] == "gift-cards.md"
    assert "3 years" in body["answer"]

    off_topic = local_client.post(
        "/v1/answers",
        json={"prompt": "faq-bot", "version": version, "question": "How do I cook pasta?"},
    ).json()
    assert (off_topic["outcome"], off_topic["model"]) == ("unknown", None)
    assert off_topic["answer"].startswith("Not covered by our FAQ.")


def test_ticket_summarizer_rehearses_against_the_fake_model(
    model_client: TestClient, fake_model: tuple[str, FakeModelState]
) -> None:
    _, state = fake_model
    body = _summarize(model_client, TICKET, audience="agent")

    assert (body["outcome"], body["model"]) == ("answered", "gpt-4o-mini")
    assert body["answer"] != NOT_COVERED
    assert "glass vase inside was broken" in str(body["answer"])  # the echoed ticket
    sent = state.requests[-1].body
    assert sent["max_tokens"] == 300
    assert "TICKET:\n" + TICKET in sent["messages"][1]["content"]
