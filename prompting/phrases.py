"""Phrase matching that survives case, width, spacing and zero-width tricks (pure).

Two questions are answered here: does a text contain one of a version's forbidden phrases
(:func:`find_forbidden_phrase`, anywhere in the text), and is a model reply a refusal
(:func:`find_refusal`: the reply *opens* with one of :data:`REFUSAL_OPENINGS`). Both compare
texts after :func:`normalise` (NFKC, so full-width letters become ASCII; invisible and
zero-width characters removed; case-folded; runs of whitespace collapsed); refusal matching
also reads typographic apostrophes as ``'`` and skips leading quotes, asterisks and spaces.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from prompting import redaction

__all__ = ["REFUSAL_OPENINGS", "find_forbidden_phrase", "find_refusal", "normalise"]

#: How a model reply that refuses to answer begins (matched after normalisation, at the very
#: start of the reply). Kept short and specific: a reply that merely *contains* "can't"
#: ("You can't return opened software [1].") is an answer, not a refusal.
REFUSAL_OPENINGS: tuple[str, ...] = (
    "I can't help",
    "I cannot help",
    "I can't assist",
    "I cannot assist",
    "I can't answer",
    "I cannot answer",
    "I can't provide",
    "I cannot provide",
    "I can't comply",
    "I cannot comply",
    "I won't help",
    "I won't be able to help",
    "I'm not able to help",
    "I am not able to help",
    "I'm unable to help",
    "I am unable to help",
    "I'm sorry, but I can't",
    "I'm sorry, but I cannot",
    "I'm sorry, I can't",
    "I'm sorry, I cannot",
    "Sorry, but I can't",
    "Sorry, I can't",
    "Sorry, I cannot",
    "I apologize, but I can't",
    "I apologize, but I cannot",
    "I must decline",
    "I'm afraid I can't",
)

#: Apostrophe look-alikes read as ``'`` when matching refusals.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
#: What a reply may open with before its first word (quotes, emphasis, spaces).
_LEADING = " \"'*_>"


# Cached: one answer is normalised by each check of the guardrails in turn, and the
# forbidden phrases and empty answers of a version are the same on every request.
@functools.lru_cache(maxsize=256)
def normalise(text: str) -> str:
    """Text as redaction sees it (NFKC, no invisibles), case-folded, spaces collapsed."""
    return " ".join(redaction.normalise(text).casefold().split())


def find_forbidden_phrase(text: str, phrases: Sequence[str]) -> str | None:
    """The first forbidden phrase the text contains, ignoring case, width and spacing tricks."""
    haystack = normalise(text)
    return next((phrase for phrase in phrases if normalise(phrase) in haystack), None)


def _opening(text: str) -> str:
    return normalise(text).translate(_APOSTROPHES).lstrip(_LEADING)


_NORMALISED_OPENINGS = tuple((opening, _opening(opening)) for opening in REFUSAL_OPENINGS)


def find_refusal(text: str) -> str | None:
    """The refusal opening `text` starts with (one of :data:`REFUSAL_OPENINGS`), or None.

    Only the start of the reply counts, and only at a word boundary: "I can't helpfully
    summarise ..." is not a refusal, "I can't help with that." is.
    """
    head = _opening(text[:400])
    for opening, normalised in _NORMALISED_OPENINGS:
        if head.startswith(normalised):
            rest = head[len(normalised) :]
            if not rest or not rest[0].isalnum():
                return opening
    return None
