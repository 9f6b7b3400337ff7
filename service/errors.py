"""The service's error hierarchy, mapped to HTTP problems in one place (``service.http.problems``).

::

    ServiceError
    ├── PromptNotFoundError     404: no PromptVersion serves this prompt (or version)
    ├── CorpusError             (CLI, start-up) a corpus folder or document cannot be read
    ├── RetrievalError          503: the vector store failed
    │   ├── VectorStoreError    503: the vector store could not be opened
    │   └── CollectionMismatchError  the collection holds vectors of another size
    ├── EmbeddingError          503: the embedding model failed
    ├── ModelError              the model could not answer
    │   ├── UpstreamError       one upstream call failed (status, timeout, reset, bad body)
    │   ├── UpstreamRejectedError    502: the upstream refused our request (4xx): no retry
    │   └── UpstreamUnavailableError 503 + Retry-After: every model failed within the deadline
    ├── InvalidOutputError      502: the answer broke the version's output contract (JSON
    │                                schema), repair attempts included
    ├── RateLimitedError        429 + Retry-After: our own limits had no room within the deadline
    ├── DeadlineExceededError   503 + Retry-After: the request's deadline passed before the
    │                                model could be called (queueing, embedding, retrieval)
    ├── IdempotencyError        an Idempotency-Key cannot be honoured
    │   ├── IdempotencyKeyInvalidError   400: the key is empty, too long or not printable ASCII
    │   ├── IdempotencyKeyReusedError    422: the key was used before with another body
    │   ├── IdempotencyKeyInFlightError  409: a request with this key is still being processed
    │   └── IdempotencyUnavailableError  503: the shared store (Redis) cannot be reached
    └── FeedbackError           a rating cannot be taken
        ├── FeedbackNotFoundError        404: no answer with this request id (unknown, expired,
        │                                     or answered for another tenant)
        └── FeedbackUnavailableError     503: the feedback store (Redis) cannot be reached
    AccessError                 the caller may not make this request
    └── PermissionDeniedError   403: the key is not allowed to use this prompt

(A missing or unknown API key (401) and a used-up TENANT_RPM (429) are answered by
``service.http.access.AccessMiddleware`` before any handler runs.)

Also answered here, from the prompt domain (``prompting.errors``, not ServiceErrors):
VariableError 422 (a request variable is missing, unknown or breaks a rule) and
TemplateError 500 (a template failed to render; versions that fail to compile are
marked Invalid at load and never served). ``AnswerableError`` catches both kinds.
"""

from __future__ import annotations

from prompting.errors import PromptingError, TemplateError, VariableError, VariableProblem

__all__ = [
    "AccessError",
    "AnswerableError",
    "CollectionMismatchError",
    "CorpusError",
    "DeadlineExceededError",
    "EmbeddingError",
    "FeedbackError",
    "FeedbackNotFoundError",
    "FeedbackUnavailableError",
    "IdempotencyError",
    "IdempotencyKeyInFlightError",
    "IdempotencyKeyInvalidError",
    "IdempotencyKeyReusedError",
    "IdempotencyUnavailableError",
    "InvalidOutputError",
    "ModelError",
    "PermissionDeniedError",
    "PromptNotFoundError",
    "PromptingError",
    "RateLimitedError",
    "RetrievalError",
    "ServiceError",
    "TemplateError",
    "UpstreamError",
    "UpstreamRejectedError",
    "UpstreamUnavailableError",
    "VariableError",
    "VariableProblem",
    "VectorStoreError",
]


class ServiceError(Exception):
    """Base of every error the service turns into an HTTP problem."""


#: What the problem handlers answer: the service's errors and the prompt domain's
#: (``prompting.errors``: VariableError 422, TemplateError 500).
AnswerableError = (ServiceError, PromptingError)


class PromptNotFoundError(ServiceError):
    """No loaded PromptVersion matches the request."""


class RetrievalError(ServiceError):
    """Context could not be retrieved."""


class VectorStoreError(RetrievalError):
    """The vector store could not be opened or reached."""


class CollectionMismatchError(RetrievalError):
    """The collection exists with vectors the embedder cannot produce."""


class CorpusError(ServiceError):
    """A corpus folder or document cannot be read."""


class EmbeddingError(ServiceError):
    """Texts could not be embedded."""


class ModelError(ServiceError):
    """The model upstream failed or gave an unusable answer."""


class UpstreamError(ModelError):
    """One call to a model upstream failed.

    `status` is the HTTP status (None for timeouts, resets, connect errors and bad
    bodies); `retry_after` the seconds the upstream asked us to wait, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


class UpstreamRejectedError(ModelError):
    """The upstream refused the request itself (400, 401, 404, 422...): retrying cannot help."""


class UpstreamUnavailableError(ModelError):
    """No model could answer within the deadline; the caller should retry after `retry_after`."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidOutputError(ServiceError):
    """The model's answer was not JSON meeting the version's schema, after every repair.

    The message names the problem (where in the document, which schema rule), never the
    model's text: it reaches logs and the problem body.
    """


class RateLimitedError(ServiceError):
    """Our own per-upstream rate limits had no room before the request's deadline."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceededError(ServiceError):
    """The request's deadline passed in a stage before the model call (or in a stage
    without deadline handling of its own); the caller may retry after `retry_after`."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyError(ServiceError):
    """An ``Idempotency-Key`` request header cannot be honoured."""


class IdempotencyKeyInvalidError(IdempotencyError):
    """The key breaks a rule (length or charset); ``rule`` names it for clients and logs."""

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(message)


class IdempotencyKeyReusedError(IdempotencyError):
    """The key was already used with a different request body."""


class IdempotencyKeyInFlightError(IdempotencyError):
    """The first request with this key has not finished yet."""


class IdempotencyUnavailableError(IdempotencyError):
    """The idempotency store (Redis) is unreachable: keyed requests are refused, never run twice."""


class AccessError(ServiceError):
    """The caller may not make this request."""


class PermissionDeniedError(AccessError):
    """The authenticated key is not allowed to use the requested prompt."""


class FeedbackError(ServiceError):
    """A rating sent to POST /v1/feedback cannot be taken."""


class FeedbackNotFoundError(FeedbackError):
    """No remembered answer has this request id for this tenant (or it expired)."""


class FeedbackUnavailableError(FeedbackError):
    """The feedback store (Redis) failed or did not answer in time."""
