"""Guardrails on a streamed answer: emit only text no later chunk can make forbidden (pure).

A streamed reply reaches the client chunk by chunk, but the guardrails of
:mod:`service.answering.guardrails` judge whole texts. :class:`StreamGuard` sits between:
it keeps everything received, checks the whole of it on every chunk (forbidden phrases,
the canary, a long echo of the system message, a refusal opening), and releases only a
prefix that no continuation can turn into a violation:

- nothing until the reply's opening is long enough to tell it is not a refusal
  (longer than the longest of :data:`prompting.phrases.REFUSAL_OPENINGS`);
- then everything but a held-back window at the end: at least as many letters and digits
  as the longest forbidden phrase (or the canary's secret), and, when the system message is
  protected, :data:`~service.answering.guardrails.SYSTEM_ECHO_WORDS` words.

Why that is enough: a phrase that starts in the released part and is at most W characters
long (normalised) would end inside the window, so it would already be in the text checked,
and the guard would have tripped instead of releasing. Once tripped, the guard releases
nothing more; the stream then ends with the refusal. When the stream ends, the caller
decides the outcome on the whole text (:func:`~service.answering.guardrails.assess_answer`)
and releases the window (:meth:`StreamGuard.rest`) only for an answer it sends as is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from prompting.phrases import REFUSAL_OPENINGS, find_forbidden_phrase, find_refusal, normalise
from service.answering.guardrails import SYSTEM_ECHO_WORDS, find_leak

__all__ = ["REFUSAL_HOLD_CHARS", "StreamGuard", "decide_release"]

#: Characters of the (normalised) opening held back until a refusal is ruled out.
REFUSAL_HOLD_CHARS = max(len(normalise(opening)) for opening in REFUSAL_OPENINGS) + 1
#: What a reply may open with before its first word (as in :func:`find_refusal`).
_LEADING = " \"'*_>"
_WORD_CHAR = re.compile(r"\w")


def _alnum_weight(char: str) -> int:
    """Letters and digits `char` becomes once normalised (0 for a combining mark)."""
    if unicodedata.combining(char):
        return 0
    return sum(c.isalnum() for c in normalise(char))


def decide_release(text: str, hold_chars: int, hold_words: int) -> int:
    """How many characters of `text` may be released: all but a tail holding at least
    `hold_chars` letters/digits (normalised) and `hold_words` word starts (pure)."""
    chars = words = 0
    index = len(text)
    while index > 0 and (chars < hold_chars or words < hold_words):
        index -= 1
        char = text[index]
        chars += _alnum_weight(char)
        starts_word = _WORD_CHAR.match(char) and (
            index == 0 or not _WORD_CHAR.match(text[index - 1])
        )
        words += bool(starts_word)
    if chars < hold_chars or words < hold_words:
        return 0
    return index


@dataclass
class StreamGuard:
    """Watches one streamed reply; :meth:`feed` returns what may be sent now."""

    phrases: Sequence[str] = ()
    canary: str | None = None
    #: The system message minus caller/document text (``build_protected_text``), or None.
    protected: str | None = None
    #: Everything received so far.
    text: str = ""
    #: Characters of `text` released (after the leading whitespace skipped).
    released: int = 0
    #: Why the guard tripped (then it releases nothing more), or None.
    tripped: str | None = None
    _hold_chars: int = field(init=False, default=0)
    _hold_words: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        secret = self.canary.rsplit("-", 1)[-1] if self.canary else ""
        lengths = [len(normalise(p)) for p in self.phrases if normalise(p)]
        self._hold_chars = max([len(secret), *lengths, 1])
        self._hold_words = SYSTEM_ECHO_WORDS if self.protected else 0

    def feed(self, delta: str) -> str:
        """Take the next chunk; the text that may be released now ("" for none)."""
        if self.tripped is not None:
            return ""
        self.text += delta
        self.tripped = self._violation()
        if self.tripped is not None:
            return ""
        if self.released == 0:
            start = len(self.text) - len(self.text.lstrip())
            head = normalise(self.text[:400]).lstrip(_LEADING)
            if len(head) < REFUSAL_HOLD_CHARS and len(self.text) < 400:
                return ""  # the opening could still become a refusal
            self.released = start
        upto = decide_release(self.text, self._hold_chars, self._hold_words)
        if upto <= self.released:
            return ""
        chunk = self.text[self.released : upto]
        self.released = upto
        return chunk

    def rest(self) -> str:
        """The held-back text, to release when the whole answer is sent as is."""
        whole = self.text.strip()
        offset = len(self.text) - len(self.text.lstrip())
        return whole[max(self.released - offset, 0) :]

    def _violation(self) -> str | None:
        leak = find_leak(self.text, self.canary, self.protected)
        if leak is not None:
            return leak
        phrase = find_forbidden_phrase(self.text, self.phrases)
        if phrase is not None:
            return f"forbidden phrase {phrase!r}"
        opening = find_refusal(self.text)
        if opening is not None:
            return f"the model refused ({opening!r})"
        return None
