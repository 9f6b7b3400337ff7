"""What the online judge may look at, and how much of it (pure; the caller passes `now`).

::

    answer ──is_judgeable?──no──> nothing (not counted: it is no live model answer)
              │yes
              ├─ roll >= sampleRate ─────────> sampled_out
              ├─ judge model's breaker open ─> breaker_open
              ├─ version's bucket empty ─────> over_budget
              ├─ queue full ─────────────────> dropped (the token is given back)
              └─ queued ──> judge call ──────> scored | error   (or breaker_open by then)

Judged: answers with outcome ``answered`` or ``fallback`` that a model produced for this
request. Not judged: errors, refusals, ``unknown`` (the version's empty answer, written
by the prompt's author), replies from the response cache (the model's text was judged,
or sampled out, when it was first produced) and idempotent replays (they never reach the
pipeline: the first response is replayed by the HTTP layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from service.answering.outcome import Outcome
from service.answering.result import AnswerResult

__all__ = ["JUDGED_OUTCOMES", "JudgeResult", "TokenBucket", "decide_sampled", "is_judgeable"]

#: The outcomes a judge grades: the model's own answers.
JUDGED_OUTCOMES = frozenset({Outcome.ANSWERED, Outcome.FALLBACK})


class JudgeResult(StrEnum):
    """The ``result`` label of ``promptrollouts_judge_calls_total``."""

    SCORED = "scored"
    SAMPLED_OUT = "sampled_out"
    OVER_BUDGET = "over_budget"
    BREAKER_OPEN = "breaker_open"
    ERROR = "error"
    DROPPED = "dropped"


def is_judgeable(result: AnswerResult) -> bool:
    """Whether `result` is a live model answer of a version with a judge (pure)."""
    served, reply = result.served, result.reply
    if served is None or reply is None or reply.cache_hit:
        return False
    if served.resource.spec.rollout.analysis.judge is None:
        return False
    return result.error is None and result.outcome in JUDGED_OUTCOMES


def decide_sampled(roll: float, sample_rate: float) -> bool:
    """Whether an answer with random `roll` in [0, 1) is judged at `sample_rate` (pure)."""
    return roll < sample_rate


@dataclass
class TokenBucket:
    """A version's judge budget: `per_minute` tokens, refilled continuously.

    It starts full, so a burst right after start (or after a quiet minute) may spend
    `per_minute` at once; any 60-second window then sees at most ``2 * per_minute`` calls
    and the long-run rate is `per_minute`.
    """

    per_minute: int
    tokens: float
    updated: float

    @classmethod
    def full(cls, per_minute: int, now: float) -> TokenBucket:
        """A bucket of `per_minute` tokens at `now`."""
        return cls(per_minute, float(per_minute), now)

    def take(self, now: float) -> bool:
        """Spend one token if there is one (refilling for the time since the last call)."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.per_minute), self.tokens + elapsed * self.per_minute / 60.0)
        self.updated = max(self.updated, now)
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def give_back(self) -> None:
        """Return a token that bought nothing (its work was dropped)."""
        self.tokens = min(float(self.per_minute), self.tokens + 1.0)

    def resize(self, per_minute: int) -> None:
        """Follow a changed ``maxPerMinute`` (the tokens in hand are kept, up to it)."""
        self.per_minute = per_minute
        self.tokens = min(self.tokens, float(per_minute))
