"""Phrase matching that survives case, width, spacing and zero-width tricks (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from prompting import redaction

__all__ = ["find_forbidden_phrase", "normalise"]


def normalise(text: str) -> str:
    """Text as redaction sees it (NFKC, no invisibles), case-folded, spaces collapsed."""
    return " ".join(redaction.normalise(text).casefold().split())


def find_forbidden_phrase(text: str, phrases: Sequence[str]) -> str | None:
    """The first forbidden phrase the text contains, ignoring case, width and spacing tricks."""
    haystack = normalise(text)
    return next((phrase for phrase in phrases if normalise(phrase) in haystack), None)
