"""What a human asks of a rollout: the request annotation and its actions.

``promptctl promote|abort|pause|resume|retry`` writes the annotation; the controller reads
it. Both sides import it from here, so the contract lives in ``api/`` and neither package
imports the other.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["REQUEST_ANNOTATION", "Action"]

#: The annotation `promptctl promote|abort|pause|resume|retry` writes: "<action>@<unique id>".
REQUEST_ANNOTATION = "promptrollouts.io/request"


class Action(StrEnum):
    """What a human can ask of a rollout."""

    PROMOTE = "promote"
    PROMOTE_FULL = "promote-full"
    ABORT = "abort"
    PAUSE = "pause"
    RESUME = "resume"
    RETRY = "retry"
