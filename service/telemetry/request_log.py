"""The ``request`` log event: one per answered request, content logged per `ContentMode`.

::

    RequestRecord ──build_request_fields(record, mode)──> fields ──RequestLogger.log──> JSON line

Content is the rendered prompt (``messages``), the ``response`` and the request's
``variables`` (in ``redacted`` mode their names too: a name can be an e-mail address).
The error message, which may quote user text, is redacted in every mode.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import structlog
from structlog.typing import FilteringBoundLogger

from prompting.redaction import redact, redact_value
from service.telemetry.logs import Verbatim

__all__ = [
    "MAX_CONTENT_CHARS",
    "ContentMode",
    "RequestLogger",
    "RequestRecord",
    "build_request_fields",
    "clip",
]

EVENT = "request"
LOGGER_NAME = "service.requests"
#: Longest message, response or error kept in a line; the rest is cut (after redaction).
MAX_CONTENT_CHARS = 4000
#: Redaction reads this much past the cut, so a value straddling it is still recognised.
_REDACTION_MARGIN = 2048


class ContentMode(StrEnum):
    """How much of a request's content its log line carries (the ``LOG_CONTENT`` setting)."""

    #: No prompt, response or variables at all: metadata only.
    OFF = "off"
    #: Prompt, response and variables with personal data and secrets replaced (the default).
    REDACTED = "redacted"
    #: Prompt, response and variables as they are. Unsafe: logs hold raw personal data and
    #: any secret a user pasted. An explicit opt-in for debugging, never a default.
    FULL = "full"


@dataclass(frozen=True)
class RequestRecord:
    """What happened in one answered request (``request_id`` comes from the log context)."""

    prompt: str
    version: str | None
    model: str | None
    #: An ``Outcome`` value.
    outcome: str
    status: int
    latency_ms: float
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    retries: int = 0
    cache_hit: bool = False
    fallback_used: bool = False
    #: The rendered prompt as (role, content) pairs.
    messages: Sequence[tuple[str, str]] = ()
    response: str | None = None
    variables: Mapping[str, object] = field(default_factory=dict)
    error: str | None = None


def clip(text: str, length: int | None = None) -> str:
    """`text` cut to `MAX_CONTENT_CHARS`, saying how long it was (`length`, if not its own)."""
    if len(text) <= MAX_CONTENT_CHARS:
        return text
    return f"{text[:MAX_CONTENT_CHARS]}[... {length or len(text)} characters in all]"


def _redact_clipped(text: str) -> str:
    # Long texts are only redacted up to the margin past the cut: bounded cost.
    return clip(redact(text[: MAX_CONTENT_CHARS + _REDACTION_MARGIN]), len(text))


def build_request_fields(record: RequestRecord, mode: ContentMode) -> dict[str, object]:
    """The event's fields for `record` under `mode` (pure).

    Content values come wrapped in `Verbatim`: redacted here already, or logged in full
    by choice, so the log pipeline's own redaction pass leaves them alone. Messages,
    response and error are cut at `MAX_CONTENT_CHARS`; variables are kept whole (their
    size is bounded by the request body limit and the version's variable rules).
    """
    fields: dict[str, object] = {
        "prompt": record.prompt,
        "version": record.version,
        "model": record.model,
        "outcome": str(record.outcome),
        "status": record.status,
        "latency_ms": round(record.latency_ms, 3),
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cost_usd": record.cost_usd,
        "retries": record.retries,
        "cache_hit": record.cache_hit,
        "fallback_used": record.fallback_used,
        "content": str(mode),
        "error": None if record.error is None else Verbatim(_redact_clipped(record.error)),
    }
    if mode is ContentMode.OFF:
        return fields
    redacted = mode is ContentMode.REDACTED
    content = _redact_clipped if redacted else clip
    messages = [{"role": role, "content": content(text)} for role, text in record.messages]
    response = None if record.response is None else content(record.response)
    variables = redact_value(record.variables) if redacted else dict(record.variables)
    fields["messages"] = Verbatim(messages)
    fields["response"] = Verbatim(response)
    fields["variables"] = Verbatim(variables)
    return fields


class RequestLogger:
    """Logs one ``request`` event per answered request: info below 500, error from 500 up."""

    def __init__(self, mode: ContentMode = ContentMode.REDACTED) -> None:
        self.mode = mode
        # Bound now: follows the logging configuration in force when the app is built.
        self._logger: FilteringBoundLogger = structlog.get_logger(LOGGER_NAME).bind()

    def log(self, record: RequestRecord) -> None:
        """Emit `record` as one JSON line; nothing is built when its level is filtered out."""
        level = logging.ERROR if record.status >= 500 else logging.INFO
        if not self._logger.is_enabled_for(level):
            return
        fields = build_request_fields(record, self.mode)
        if level == logging.ERROR:
            self._logger.error(EVENT, **fields)
        else:
            self._logger.info(EVENT, **fields)
