"""Checks on a model's answer: leaks, forbidden phrases, refusals, citations, "not covered" (pure).

The output check comes first: an answer that carries the version's canary token, or
repeats a long run of the system message, reveals the prompt (a sign of an obeyed
injection) and is ``refused`` whatever else it says. A reply that opens like a refusal
("I can't help with that", :data:`prompting.phrases.REFUSAL_OPENINGS`) is ``refused`` too,
with the version's refusal answer, so a prompt that makes the model refuse more shows up
in ``promptrollouts_requests_total{outcome="refused"}``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from api.v1alpha1 import Guardrails
from prompting.phrases import find_forbidden_phrase, find_refusal, normalise
from service.answering.outcome import Outcome
from service.retrieval.search import Passage

__all__ = [
    "SYSTEM_ECHO_WORDS",
    "Verdict",
    "assess_answer",
    "build_protected_text",
    "find_citations",
    "find_leak",
]

_CITATION = re.compile(r"\[(\d{1,3})\]")
_WORD = re.compile(r"\w+")
#: An answer repeating this many consecutive words of the system message leaks it.
SYSTEM_ECHO_WORDS = 10


@dataclass(frozen=True)
class Verdict:
    """What to answer, and why."""

    outcome: Outcome
    answer: str
    cited: list[Passage]
    reason: str | None = None
    #: The answer revealed the system message (canary or a long run of it).
    leaked: bool = False


def _bare(text: str) -> str:
    return normalise(text).strip(" .!")


def find_citations(text: str, passages: Sequence[Passage]) -> list[Passage]:
    """The passages an answer cites by [n], in first-cited order; markers to nothing are ignored."""
    cited: list[Passage] = []
    for match in _CITATION.finditer(text):
        number = int(match.group(1))
        if 1 <= number <= len(passages) and passages[number - 1] not in cited:
            cited.append(passages[number - 1])
    return cited


def build_protected_text(
    system: str, markers: tuple[str, str] | None, inputs: Sequence[str]
) -> str:
    """The system message minus what callers and documents put in it (pure).

    The reference block (between ``markers``) and every caller-supplied value are cut
    out, so an answer that quotes a passage or the question is not mistaken for a leak.
    """
    if markers is not None:
        opening, closing = markers
        start, end = system.find(opening), system.find(closing)
        if start != -1 and end > start:
            system = f"{system[:start]}\n{system[end + len(closing) :]}"
    for value in sorted((v for v in inputs if v.strip()), key=len, reverse=True):
        system = system.replace(value, "\n")
    return system


def _words(text: str) -> list[str]:
    return _WORD.findall(normalise(text))


# Cached: a version's system message (minus the caller's values) is mostly the same text
# from one request to the next.
@functools.lru_cache(maxsize=64)
def _runs(protected: str) -> frozenset[tuple[str, ...]]:
    """Every run of SYSTEM_ECHO_WORDS consecutive words of `protected`."""
    source, size = _words(protected), SYSTEM_ECHO_WORDS
    return frozenset(tuple(source[i : i + size]) for i in range(len(source) - size + 1))


def find_leak(answer: str, canary: str | None, protected: str | None) -> str | None:
    """Why `answer` reveals the system message, or None (pure)."""
    if canary:
        secret = canary.rsplit("-", 1)[-1].casefold()
        if secret and secret in "".join(_words(answer)):
            return "the answer contains the system message's canary token"
    if protected:
        size = SYSTEM_ECHO_WORDS
        runs = _runs(protected)
        said = _words(answer)
        if any(tuple(said[i : i + size]) in runs for i in range(len(said) - size + 1)):
            return f"the answer repeats {size} or more consecutive words of the system message"
    return None


def assess_answer(
    text: str,
    passages: Sequence[Passage],
    guardrails: Guardrails,
    empty_answer: str,
    *,
    canary: str | None = None,
    protected: str | None = None,
) -> Verdict:
    """Decide the outcome of a model answer given what was retrieved.

    ``canary`` and ``protected`` (see :func:`build_protected_text`) enable the output
    check for leaks of the system message.
    """
    leak = find_leak(text, canary, protected)
    if leak is not None:
        return Verdict(Outcome.REFUSED, guardrails.refusal_answer, [], leak, leaked=True)
    phrase = find_forbidden_phrase(text, guardrails.forbidden_phrases)
    if phrase is not None:
        return Verdict(
            Outcome.REFUSED, guardrails.refusal_answer, [], f"forbidden phrase {phrase!r}"
        )
    opening = find_refusal(text)
    if opening is not None:
        return Verdict(
            Outcome.REFUSED, guardrails.refusal_answer, [], f"the model refused ({opening!r})"
        )
    if not text.strip() or _bare(text) == _bare(empty_answer):
        return Verdict(Outcome.UNKNOWN, empty_answer, [], "the model found no answer")
    cited = find_citations(text, passages)
    if guardrails.require_citations and not cited:
        return Verdict(Outcome.UNKNOWN, empty_answer, [], "the answer cites no retrieved passage")
    return Verdict(Outcome.ANSWERED, text, cited)
