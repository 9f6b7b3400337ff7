"""User feedback on answers (``POST /v1/feedback``): one component, ``remember / rate``.

::

    POST /v1/answers ──answer sent──> Feedback.remember(request id, answer, tenant)
                                        └─ in the background: store.remember (never delays
                                           or fails the answer; a failure is counted)
    POST /v1/feedback ──> Feedback.rate ──> store.fetch ─> prompt scope ─> store.rate
                                            └─ metrics (count once, score, retracted), log

The store keeps ``tenant + request id → (prompt, version, tenant, score)`` for FEEDBACK_TTL
seconds: :mod:`service.http.feedback_memory` (one process, bounded) or
:mod:`service.http.feedback_redis` (shared by replicas, REDIS_URL). Stores raise only the
service's errors (``FeedbackUnavailableError``, 503). The rules are pure, in
:mod:`service.http.feedback_records`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import structlog

from prompting.redaction import redact
from service.answering.schemas import AnswerResponse
from service.errors import FeedbackNotFoundError, FeedbackUnavailableError
from service.http.access import require_prompt
from service.http.auth import Caller
from service.http.feedback_records import (
    REMEMBERED_OUTCOMES,
    Answered,
    FeedbackRequest,
    FeedbackResponse,
    build_feedback_key,
    decide_rating,
)
from service.telemetry.logs import Verbatim
from service.telemetry.metrics import Metrics
from service.telemetry.request_log import ContentMode

__all__ = ["DEFAULT_MAX_PENDING", "Feedback", "FeedbackStore"]

#: Answers being remembered in the background at most; beyond, they are not remembered
#: (counted), so a hung store cannot pile up tasks.
DEFAULT_MAX_PENDING = 1000

_log = logging.getLogger(__name__)
_events = structlog.get_logger("service.feedback")


class FeedbackStore(Protocol):
    """Remembered answers by key (:func:`build_feedback_key`), expiring on their own.

    Every method raises ``FeedbackUnavailableError`` when the store cannot be reached.
    """

    async def remember(self, key: str, answered: Answered, ttl_seconds: float) -> bool:
        """Remember `answered` unless the key is taken (then False, nothing changed)."""
        ...

    async def fetch(self, key: str) -> Answered | None:
        """The remembered answer, or None (unknown or expired)."""
        ...

    async def rate(self, key: str, score: float) -> Answered | None:
        """Set the answer's score atomically; the record as it was before, or None."""
        ...

    async def close(self) -> None:
        """Free the store's resources."""
        ...


class Feedback:
    """Remembers answered request ids and takes ratings of them (see the module docstring)."""

    def __init__(
        self,
        store: FeedbackStore,
        *,
        ttl_seconds: float,
        metrics: Metrics,
        log_content: ContentMode = ContentMode.REDACTED,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._metrics = metrics
        self._log_content = log_content
        self._max_pending = max_pending
        self._pending: dict[str, asyncio.Task[None]] = {}

    def remember(self, request_id: str, answer: AnswerResponse, tenant: str) -> None:
        """Remember who asked `request_id` and what answered, in the background.

        Never raises and never waits: the answer is sent whatever the store does.
        """
        if answer.outcome not in REMEMBERED_OUTCOMES:
            return
        key = build_feedback_key(tenant, request_id)
        if key in self._pending:
            return  # the same id again while the first is being stored: the first keeps it
        if len(self._pending) >= self._max_pending:
            self._failed("too many answers are waiting to be remembered")
            return
        answered = Answered(answer.prompt, answer.version, tenant)
        task = asyncio.create_task(self._remember(key, answered), name="remember for feedback")
        self._pending[key] = task
        task.add_done_callback(lambda _: self._pending.pop(key, None))

    async def _remember(self, key: str, answered: Answered) -> None:
        try:
            await self._store.remember(key, answered, self._ttl)
        except FeedbackUnavailableError as error:
            self._failed(str(error))
        except Exception as error:  # a bug in a store must not go unseen, nor reach the answer
            self._failed(f"the store failed unexpectedly ({type(error).__name__})")
            _log.exception("remembering a request id for feedback failed")

    def _failed(self, reason: str) -> None:
        self._metrics.feedback_remember_failures.inc()
        _log.warning("answer sent but its request id was not remembered for feedback: %s", reason)

    async def rate(self, rating: FeedbackRequest, caller: Caller) -> FeedbackResponse:
        """Record `rating` of the caller's tenant's answer.

        Raises ``FeedbackNotFoundError`` (404: unknown, expired or another tenant's id),
        ``PermissionDeniedError`` (403: the key may not use the answer's prompt) or
        ``FeedbackUnavailableError`` (503).
        """
        key = build_feedback_key(caller.tenant, rating.request_id)
        pending = self._pending.get(key)
        if pending is not None:  # answered a moment ago: let it be stored first
            await asyncio.wait({pending})
        answered = await self._store.fetch(key)
        if answered is None:
            raise FeedbackNotFoundError(_not_found(rating.request_id))
        require_prompt(caller, answered.prompt, self._metrics)
        before = await self._store.rate(key, rating.score)
        if before is None:  # expired between the two calls
            raise FeedbackNotFoundError(_not_found(rating.request_id))
        change = decide_rating(before.score, rating.score)
        labels = (before.prompt, before.version)
        if change.counted:
            self._metrics.feedback.labels(*labels).inc()
        self._metrics.feedback_score.labels(*labels).inc(change.added)
        if change.retracted:
            self._metrics.feedback_score_retracted.labels(*labels).inc(change.retracted)
        self._log(rating, before, replaced=not change.counted)
        return FeedbackResponse(
            request_id=rating.request_id,
            prompt=before.prompt,
            version=before.version,
            replaced=not change.counted,
        )

    def _log(self, rating: FeedbackRequest, answered: Answered, *, replaced: bool) -> None:
        """The ``feedback`` event: the comment redacted, or left out with LOG_CONTENT=off."""
        comment = rating.comment
        fields: dict[str, object] = {
            "prompt": answered.prompt,
            "version": answered.version,
            "rated_request_id": rating.request_id,
            "score": rating.score,
            "replaced": replaced,
            "comment_chars": 0 if comment is None else len(comment),
        }
        if comment and self._log_content is not ContentMode.OFF:
            fields["comment"] = Verbatim(redact(comment))
        _events.info("feedback", **fields)

    async def close(self) -> None:
        """Stop remembering (pending writes are cancelled), then close the store."""
        for task in list(self._pending.values()):
            task.cancel()
        for task in list(self._pending.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._store.close()


def _not_found(request_id: str) -> str:
    return (
        f"no answer with request_id {request_id!r} to rate: unknown, older than FEEDBACK_TTL, "
        "or not asked by this tenant"
    )
