"""Checks on a model's answer: forbidden phrases, citations, "not covered" (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from api.v1alpha1 import Guardrails
from service import redaction
from service.outcome import Outcome
from service.retrieval import Passage

__all__ = ["Verdict", "assess_answer", "find_citations", "find_forbidden_phrase", "normalise"]

_CITATION = re.compile(r"\[(\d{1,3})\]")


@dataclass(frozen=True)
class Verdict:
    """What to answer, and why."""

    outcome: Outcome
    answer: str
    cited: list[Passage]
    reason: str | None = None


def normalise(text: str) -> str:
    """Text as redaction sees it (NFKC, no invisibles), case-folded, spaces collapsed."""
    return " ".join(redaction.normalise(text).casefold().split())


def _bare(text: str) -> str:
    return normalise(text).strip(" .!")


def find_forbidden_phrase(text: str, phrases: Sequence[str]) -> str | None:
    """The first forbidden phrase the text contains, ignoring case, width and spacing tricks."""
    haystack = normalise(text)
    return next((phrase for phrase in phrases if normalise(phrase) in haystack), None)


def find_citations(text: str, passages: Sequence[Passage]) -> list[Passage]:
    """The passages an answer cites by [n], in first-cited order; markers to nothing are ignored."""
    cited: list[Passage] = []
    for match in _CITATION.finditer(text):
        number = int(match.group(1))
        if 1 <= number <= len(passages) and passages[number - 1] not in cited:
            cited.append(passages[number - 1])
    return cited


def assess_answer(
    text: str, passages: Sequence[Passage], guardrails: Guardrails, empty_answer: str
) -> Verdict:
    """Decide the outcome of a model answer given what was retrieved."""
    phrase = find_forbidden_phrase(text, guardrails.forbidden_phrases)
    if phrase is not None:
        return Verdict(
            Outcome.REFUSED, guardrails.refusal_answer, [], f"forbidden phrase {phrase!r}"
        )
    if not text.strip() or _bare(text) == _bare(empty_answer):
        return Verdict(Outcome.UNKNOWN, empty_answer, [], "the model found no answer")
    cited = find_citations(text, passages)
    if guardrails.require_citations and not cited:
        return Verdict(Outcome.UNKNOWN, empty_answer, [], "the answer cites no retrieved passage")
    return Verdict(Outcome.ANSWERED, text, cited)
