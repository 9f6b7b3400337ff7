"""Refusal detection: a reply that opens like a refusal, however it is disguised (pure)."""

from __future__ import annotations

import pytest

from api.v1alpha1 import Guardrails
from prompting.phrases import REFUSAL_OPENINGS, find_refusal
from service.answering.guardrails import assess_answer
from service.answering.outcome import Outcome
from service.retrieval.search import Passage

FAKE_MODEL_REFUSAL = "I can't help with that request."


@pytest.mark.parametrize(
    ("text", "opening"),
    [
        (FAKE_MODEL_REFUSAL, "I can't help"),
        ("I cannot help with questions about other customers.", "I cannot help"),
        ("I'm sorry, but I can't share that.", "I'm sorry, but I can't"),
        ("i CAN'T HELP WITH THAT", "I can't help"),
        ("Ｉ ｃａｎ'ｔ ｈｅｌｐ ｗｉｔｈ ｔｈａｔ.", "I can't help"),
        ("I\u200b can\u200d't he\u200blp with that.", "I can't help"),
        ("\ufeffI can't help.", "I can't help"),
        ("I can\u2019t help with that.", "I can't help"),
        ("I can\u02bct assist with that.", "I can't assist"),
        ("  I   can't\n\thelp.", "I can't help"),
        ('"I cannot help with that."', "I cannot help"),
        ("**I'm sorry, but I cannot** do that.", "I'm sorry, but I cannot"),
        ("> Sorry, I can't answer that.", "Sorry, I can't"),
        ("I can't help", "I can't help"),
        ("I can't help.", "I can't help"),
        ("I must decline to answer.", "I must decline"),
    ],
    ids=[
        "fake-model-refusal",
        "cannot",
        "sorry-but",
        "mixed-case",
        "full-width",
        "zero-width-characters",
        "byte-order-mark",
        "typographic-apostrophe",
        "modifier-apostrophe",
        "spacing",
        "quoted",
        "markdown-bold",
        "blockquote",
        "bare",
        "bare-with-stop",
        "decline",
    ],
)
def test_refusals_are_found_through_disguises(text: str, opening: str) -> None:
    assert find_refusal(text) == opening


@pytest.mark.parametrize(
    "text",
    [
        "You can't return opened software [1].",
        "Refunds can't be split across cards [1]; I can't help noticing the policy is strict.",
        "We can't ship to PO boxes [2].",
        "I can't-miss detail: refunds take 5 days [1].",
        "I can't helpfully summarise more than [1] says: 14 days.",
        "I cannot helpdesk-escalate, but [1] says call support.",
        "Sorry for the wait: refunds take 5 days [1].",
        "Yes. I can help: refunds take 5 days [1].",
        "",
        "The policy says: I can't help you if you lost the receipt [1].",
    ],
    ids=[
        "you-cant",
        "cant-later-in-the-text",
        "we-cant",
        "cant-as-adjective",
        "helpfully-is-not-help",
        "help-prefix-of-a-word",
        "sorry-without-refusing",
        "i-can-help",
        "empty",
        "quoted-refusal-inside-an-answer",
    ],
)
def test_answers_that_merely_contain_cant_are_not_refusals(text: str) -> None:
    assert find_refusal(text) is None


def test_every_documented_opening_is_found_by_itself() -> None:
    for opening in REFUSAL_OPENINGS:
        assert find_refusal(f"{opening} with that.") == opening


def test_only_the_start_of_a_long_reply_is_read() -> None:
    assert find_refusal("x" * 10_000_000 + " I can't help") is None


def test_a_refusing_reply_gets_the_versions_refusal_answer_and_no_citations() -> None:
    passages = [Passage("doc#0", "doc.md", "Doc", "text", 0.9)]
    guardrails = Guardrails(refusal_answer="Ask me about our policies.", require_citations=False)
    verdict = assess_answer("Ｉ ＣＡＮ'Ｔ\u200b HELP [1]", passages, guardrails, "")
    assert (verdict.outcome, verdict.answer, verdict.cited) == (
        Outcome.REFUSED,
        "Ask me about our policies.",
        [],
    )
    assert verdict.reason == 'the model refused ("I can\'t help")'
    answered = assess_answer("You can't return it [1].", passages, guardrails, "")
    assert answered.outcome is Outcome.ANSWERED
