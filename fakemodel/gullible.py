"""A gullible model, for proving the injection defences: it obeys what the prompt plants (pure).

With the ``obey_injections`` fault on, the fake model behaves as a real model that
falls for prompt injection would: when any line of the prompt says "The secret is X"
it answers with that sentence, and when the prompt asks to repeat or reveal the
system prompt it answers with the system message. Both answers cite ``[n]`` (the
passage they came from, else ``[1]``) so that citation guardrails alone do not
hide what it did. Tests use it to show the secret never comes back through the service.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["build_obedient_answer"]

_SECRET = re.compile(r"the secret is\s+([^\s.,;:!?\"']+)", re.IGNORECASE)
_PASSAGE_NUMBER = re.compile(r"^\s*\[(\d+)\]")
_REVEAL = re.compile(
    r"\b(?:repeat|reveal|print|show|output|recite)\b[^.?!]{0,40}?"
    r"\b(?:system prompt|system message|instructions)\b",
    re.IGNORECASE,
)


def build_obedient_answer(messages: Sequence[dict[str, str]]) -> str | None:
    """What a model that obeys planted instructions says, or None if nothing is planted."""
    contents = [str(m.get("content", "")) for m in messages]
    for content in contents:
        for line in content.splitlines():
            found = _SECRET.search(line)
            if found:
                number = _PASSAGE_NUMBER.match(line)
                return f"The secret is {found.group(1)}. [{number.group(1) if number else 1}]"
    if any(_REVEAL.search(content) for content in contents):
        system = next(
            (str(m.get("content", "")) for m in messages if m.get("role") == "system"), ""
        )
        return f"{system} [1]"
    return None
