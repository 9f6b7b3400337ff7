"""Degraded answers for the quality faults: refusals, unknowns and uncited answers (pure).

- ``refuse``: exactly :data:`REFUSAL`, which the service classifies as ``refused``.
- ``unknown``: an empty answer. The fake model cannot know the version's ``emptyAnswer``
  (it is not part of the rendered prompt), but the service's guardrails
  (``assess_answer``) count an empty model reply as ``unknown`` and answer the caller
  with the version's ``emptyAnswer``, whatever it is: the caller sees the prompt's empty
  answer, and ``promptrollouts_requests_total{outcome="unknown"}`` counts it.
- ``uncited``: the normal answer with its ``[n]`` citations removed (with
  ``requireCitations`` the service turns it into ``unknown``; otherwise it is an
  answered, uncited answer).
"""

from __future__ import annotations

import re

from fakemodel.faults import QualityReply

__all__ = ["REFUSAL", "UNKNOWN_REPLY", "build_degraded_answer"]

#: The fake model's refusal, word for word (the shared contract of issue 11).
REFUSAL = "I can't help with that request."
#: What the model says when it "does not know": nothing (see the module docstring).
UNKNOWN_REPLY = ""
_CITATION = re.compile(r"\s*\[\d+\]")


def build_degraded_answer(kind: QualityReply, answer: str) -> str:
    """`answer` degraded the way `kind` says (pure)."""
    if kind == "refuse":
        return REFUSAL
    if kind == "unknown":
        return UNKNOWN_REPLY
    if kind in ("invalid_json", "off_schema"):
        return answer  # output faults break JSON answers only (fakemodel.structured)
    uncited = _CITATION.sub("", answer).strip()
    return uncited or answer.replace("[", "").replace("]", "").strip()
