"""How a request ended: the ``outcome`` of every answer, problem body, log line and metric."""

from __future__ import annotations

from enum import StrEnum

from service.errors import (
    DeadlineExceededError,
    InvalidOutputError,
    ModelError,
    RateLimitedError,
    UpstreamRejectedError,
    VariableError,
)

__all__ = ["Outcome", "outcome_of_error"]


class Outcome(StrEnum):
    """The outcome tag of one request."""

    #: A grounded answer from the version's model (HTTP 200).
    ANSWERED = "answered"
    #: A grounded answer from one of the version's fallback models (HTTP 200).
    FALLBACK = "fallback"
    #: Nothing relevant was retrieved, or the answer cited nothing retrieved: the empty answer.
    UNKNOWN = "unknown"
    #: A guardrail tripped: the refusal answer (HTTP 200).
    REFUSED = "refused"
    #: Every model failed within the deadline, or the deadline passed before a model
    #: could be called (HTTP 503 + Retry-After).
    UNAVAILABLE = "unavailable"
    #: Our own rate limits had no room within the deadline (HTTP 429 + Retry-After).
    RATE_LIMITED = "rate_limited"
    #: The model upstream refused the request, e.g. a bad API key (HTTP 502).
    REJECTED = "rejected"
    #: The answer was not JSON meeting the version's output schema, repairs included
    #: (HTTP 502): the version's failure, counted in the error rate.
    INVALID_OUTPUT = "invalid_output"
    #: The request's variables broke the version's rules (HTTP 422).
    INVALID = "invalid"
    #: Retrieval, embedding or rendering failed (HTTP 5xx).
    ERROR = "error"


def outcome_of_error(error: Exception) -> Outcome:
    """The outcome tag of a request that ended in `error`."""
    if isinstance(error, VariableError):
        return Outcome.INVALID
    if isinstance(error, RateLimitedError):
        return Outcome.RATE_LIMITED
    if isinstance(error, UpstreamRejectedError):
        return Outcome.REJECTED
    if isinstance(error, InvalidOutputError):
        return Outcome.INVALID_OUTPUT
    if isinstance(error, ModelError | DeadlineExceededError):
        return Outcome.UNAVAILABLE
    return Outcome.ERROR
