"""How a request ended: the ``outcome`` field of every answer, log line and metric."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Outcome"]


class Outcome(StrEnum):
    """The outcome tag of one answer."""

    #: A grounded answer from the model.
    ANSWERED = "answered"
    #: Nothing relevant was retrieved, or the answer cited nothing retrieved: the empty answer.
    UNKNOWN = "unknown"
    #: A guardrail tripped: the refusal answer.
    REFUSED = "refused"
