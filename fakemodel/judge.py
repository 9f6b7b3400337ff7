"""The fake model as an eval judge: a deterministic score for ``llm_rubric`` (pure).

A chat request whose system message starts with :data:`JUDGE_PREFIX` (the words
``promptctl eval`` sends its judge) gets a JSON reply ``{"score": s, "reason": ...}``:

- the rubric's double-quoted phrases ("14 days") that the answer contains (any case,
  any spacing), divided by the number of quoted phrases;
- without quoted phrases, the rubric's words of four letters or more that appear in the
  answer, divided by the number of such words.

The rubric is the text after ``RUBRIC:`` and before ``QUESTION:``; the answer is the text
between ``<<<`` and the last ``>>>``. Same rubric and answer, same score.

With the ``judge_score`` fault set (``POST /admin/faults``), every judge request gets that
score instead, whatever the rubric and answer (the online judge of a rollout is tested so).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

__all__ = ["JUDGE_PREFIX", "build_judgement", "is_judge_request"]

JUDGE_PREFIX = "You are an eval judge."
_QUOTED = re.compile(r'"([^"]+)"')
_WORD = re.compile(r"[a-z0-9]{4,}")


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _between(text: str, start: str, end: str) -> str:
    head = text.find(start)
    if head < 0:
        return ""
    tail = text.rfind(end, head + len(start))
    return text[head + len(start) : tail if tail >= 0 else len(text)]


def is_judge_request(messages: Sequence[dict[str, str]]) -> bool:
    """Whether the system message starts with :data:`JUDGE_PREFIX`."""
    return bool(messages) and str(messages[0].get("content", "")).startswith(JUDGE_PREFIX)


def build_judgement(
    messages: Sequence[dict[str, str]], fixed_score: float | None = None
) -> str | None:
    """The judge's JSON reply when `messages` are a judge request, else None.

    `fixed_score` (the ``judge_score`` fault) replaces the computed score.
    """
    if not is_judge_request(messages):
        return None
    if fixed_score is not None:
        return json.dumps({"score": fixed_score, "reason": "fixed by the judge_score fault"})
    user = "\n".join(str(m.get("content", "")) for m in messages[1:])
    rubric = _between(user, "RUBRIC:", "QUESTION:")
    answer = _fold(_between(user, "<<<", ">>>"))
    phrases = [_fold(p) for p in _QUOTED.findall(rubric) if p.strip()]
    if phrases:
        found = [p for p in phrases if p in answer]
        total = len(phrases)
        what = "quoted phrases"
    else:
        words = list(dict.fromkeys(_WORD.findall(rubric.casefold())))
        answer_words = set(_WORD.findall(answer))
        found = [w for w in words if w in answer_words]
        total = len(words)
        what = "rubric words"
    score = round(len(found) / total, 4) if total else 0.0
    reason = f"{len(found)} of {total} {what} in the answer"
    return json.dumps({"score": score, "reason": reason})
