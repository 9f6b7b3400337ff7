"""The events of a streamed answer (:mod:`service.answering.streaming`)."""

from __future__ import annotations

from dataclasses import dataclass

from service.answering.outcome import Outcome
from service.answering.schemas import AnswerResponse
from service.errors import PromptingError, ServiceError

__all__ = ["Delta", "Failed", "Final", "StreamAbandonedError", "StreamEvent"]


class StreamAbandonedError(ServiceError):
    """The client went away before its stream ended."""


@dataclass(frozen=True)
class Delta:
    """A piece of the answer's text."""

    text: str


@dataclass(frozen=True)
class Final:
    """The stream ended: the answer as ``POST /v1/answers`` would have returned it."""

    response: AnswerResponse


@dataclass(frozen=True)
class Failed:
    """The stream broke after it started (the upstream failed or the deadline passed)."""

    request_id: str
    outcome: Outcome
    error: ServiceError | PromptingError


StreamEvent = Delta | Final | Failed
