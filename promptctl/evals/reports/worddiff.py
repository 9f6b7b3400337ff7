"""Two answers side by side with the words that differ marked (pure, HTML-escaped)."""

from __future__ import annotations

import difflib
import re
from html import escape

__all__ = ["render_word_diff"]

_TOKEN = re.compile(r"\s+|[^\s]+")


def render_word_diff(old: str, new: str) -> tuple[str, str]:
    """`old` with removed words in ``<del>``, `new` with added words in ``<ins>``."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    left: list[str] = []
    right: list[str] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        removed, added = escape("".join(a[i1:i2])), escape("".join(b[j1:j2]))
        if tag == "equal":
            left.append(removed)
            right.append(added)
            continue
        if removed:
            left.append(f"<del>{removed}</del>")
        if added:
            right.append(f"<ins>{added}</ins>")
    return "".join(left), "".join(right)
