"""How the fake model answers: deterministically, from the CONTEXT block of the prompt (pure)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

__all__ = ["build_answer", "build_embedding", "count_tokens", "parse_context"]

_PASSAGE = re.compile(r"^\[(\d+)\]\s*(?:\([^)]*\)\s*)?(.+)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_WORD = re.compile(r"[a-z0-9]+")
NOT_COVERED = "Not covered by policy."


def parse_context(prompt: str) -> list[tuple[int, str]]:
    """The numbered passages (`[n] (source) text`) found in a rendered prompt."""
    passages: list[tuple[int, str]] = []
    for line in prompt.splitlines():
        match = _PASSAGE.match(line.strip())
        if match:
            passages.append((int(match.group(1)), match.group(2).strip()))
    return passages


def build_answer(messages: Sequence[dict[str, str]], max_tokens: int) -> str:
    """The first sentence of passage [1] with its citation, or the not-covered answer."""
    prompt = "\n".join(str(m.get("content", "")) for m in messages)
    passages = parse_context(prompt)
    if not passages:
        return NOT_COVERED
    number, text = passages[0]
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0]
    words = sentence.split()[: max(1, max_tokens)]
    return f"{' '.join(words)} [{number}]"


def count_tokens(text: str) -> int:
    """The usual 4-characters-a-token estimate, at least 1 for non-empty text."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def build_embedding(text: str, dimension: int) -> list[float]:
    """A unit vector hashing the words of `text`: same text, same vector; shared words, closer."""
    vector = [0.0] * dimension
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "big") % dimension
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
