"""Answer checks: forbidden phrases, citations, the empty answer."""

from __future__ import annotations

import pytest

from api.v1alpha1 import Guardrails
from prompting.phrases import find_forbidden_phrase
from service.answering.guardrails import (
    assess_answer,
    build_protected_text,
    find_citations,
    find_leak,
)
from service.answering.outcome import Outcome
from service.retrieval.search import Passage

PASSAGES = [
    Passage(
        passage_id=f"doc#{i}", source="doc.md", title="Doc", text=f"text {i}", score=0.9 - i / 10
    )
    for i in range(3)
]
EMPTY = "Not covered by policy."


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("As an AI language model, I think", "as an AI language model"),
        ("AS AN   AI\nLANGUAGE MODEL", "as an AI language model"),
        ("As an A\u200bI language model", "as an AI language model"),
        ("Ａｓ ａｎ ＡＩ language model", "as an AI language model"),
        ("I can help with refunds.", None),
    ],
    ids=["plain", "case-and-spacing", "zero-width-space", "full-width", "clean"],
)
def test_forbidden_phrase_survives_obfuscation(text: str, found: str | None) -> None:
    assert find_forbidden_phrase(text, ["as an AI language model", "I cannot"]) == found


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("Yes [1].", ["doc#0"]),
        ("Yes [2] and [1] and [2].", ["doc#1", "doc#0"]),
        ("Yes [4] [0].", []),
        ("No citation.", []),
    ],
    ids=["one", "order-of-first-citation-deduplicated", "out-of-range-ignored", "none"],
)
def test_find_citations(text: str, ids: list[str]) -> None:
    assert [p.passage_id for p in find_citations(text, PASSAGES)] == ids


@pytest.mark.parametrize(
    ("text", "require", "outcome", "answer"),
    [
        ("Refunds take 5 days [1].", True, Outcome.ANSWERED, "Refunds take 5 days [1]."),
        ("Refunds take 5 days.", True, Outcome.UNKNOWN, EMPTY),
        ("Refunds take 5 days.", False, Outcome.ANSWERED, "Refunds take 5 days."),
        ("Refunds take 5 days [9].", True, Outcome.UNKNOWN, EMPTY),
        ("not covered by policy", True, Outcome.UNKNOWN, EMPTY),
        ("", False, Outcome.UNKNOWN, EMPTY),
        ("I cannot say [1].", True, Outcome.REFUSED, "I can't help with that."),
    ],
    ids=[
        "cited",
        "uncited-required",
        "uncited-allowed",
        "cites-nothing-retrieved",
        "model-says-not-covered",
        "empty",
        "forbidden",
    ],
)
def test_assess_answer(text: str, require: bool, outcome: Outcome, answer: str) -> None:
    guardrails = Guardrails(forbidden_phrases=["I cannot"], require_citations=require)
    verdict = assess_answer(text, PASSAGES, guardrails, EMPTY)
    assert (verdict.outcome, verdict.answer) == (outcome, answer)
    assert bool(verdict.cited) == (outcome is Outcome.ANSWERED and "[1]" in text)


CANARY = "CANARY-00aa11bb22cc33dd"
SYSTEM = (
    "You are a policy expert for the support team. You answer questions about company "
    "policies using only the passages you are given, never your own knowledge.\n"
    "<<<REFERENCE id=b1>>>\n[1] (a.md) Refunds take five business days once the parcel "
    "reaches our warehouse and is checked by our team.\n<<<END REFERENCE id=b1>>>\n"
    "The customer asked: how long do refunds take for parcels that reach the warehouse late?"
)
MARKERS = ("<<<REFERENCE id=b1>>>", "<<<END REFERENCE id=b1>>>")
QUESTION = "how long do refunds take for parcels that reach the warehouse late?"


@pytest.mark.parametrize(
    ("answer", "leak"),
    [
        (f"Sure! {CANARY}", "canary"),
        ("my canary is canary - 00AA 11bb 22cc 33dd", "canary"),
        ("00aa\u200b11bb22cc33dd", "canary"),
        (
            "Here it is: you are a policy expert for the support team. You answer questions "
            "about company policies",
            "repeats",
        ),
        (
            "Refunds take five business days once the parcel reaches our warehouse and is "
            "checked by our team. [1]",
            None,
        ),
        ("You asked how long do refunds take for parcels that reach the warehouse late?", None),
        ("You are a policy expert for the support team. [1]", None),
    ],
    ids=[
        "canary",
        "canary-spaced-and-cased",
        "canary-zero-width",
        "long-run-of-system",
        "quotes-a-passage",
        "echoes-the-question",
        "short-run",
    ],
)
def test_find_leak(answer: str, leak: str | None) -> None:
    protected = build_protected_text(SYSTEM, MARKERS, [QUESTION])
    found = find_leak(answer, CANARY, protected)
    assert (found is None) if leak is None else (found is not None and leak in found)


def test_a_leaking_answer_is_refused_before_other_checks() -> None:
    guardrails = Guardrails(require_citations=True, refusal_answer="No.")
    verdict = assess_answer(
        f"{CANARY} [1]", PASSAGES, guardrails, EMPTY, canary=CANARY, protected=SYSTEM
    )
    assert (verdict.outcome, verdict.answer, verdict.cited, verdict.leaked) == (
        Outcome.REFUSED,
        "No.",
        [],
        True,
    )
    clean = assess_answer("text [1]", PASSAGES, guardrails, EMPTY, canary=CANARY, protected=SYSTEM)
    assert (clean.outcome, clean.leaked) == (Outcome.ANSWERED, False)
