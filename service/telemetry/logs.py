"""Logging: one JSON object per line on stdout, for structlog events and stdlib records alike.

``configure_logging(level)`` sends both kinds of events to stdout, through the same
processors and the same renderer::

    structlog.get_logger("service.requests").info("request", ...)
        └─ structlog processors: context, level, time, traceback, redact → JSON → stdout
    logging.getLogger("uvicorn.access" | "service.x" | any library).info(...)
        └─ root handler → ProcessorFormatter(foreign_pre_chain = the same processors) → stdout

Every line carries ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``event``, the
context variables bound at the time (``request_id`` inside a request, see
``service.http.middleware``), and the event's own keys. Every key and every string value
is redacted (``prompting.redaction``: percent-encoded query strings in uvicorn's access
lines included) unless the value is wrapped in `Verbatim`; JSON is rendered
ASCII-only, so newlines, control characters and lone surrogates in user text come out
escaped and a line can neither be broken nor forged. One line is left as it is:
uvicorn's ``Uvicorn running on …`` start-up line, whose address comes from the
operator's configuration (``--host``), not from a caller.
"""

from __future__ import annotations

import json as jsonlib
import logging
import sys
import threading
from dataclasses import dataclass
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from prompting.redaction import redact_key, redact_value

__all__ = ["Verbatim", "configure_logging", "keep_listener_line", "redact_event", "write_line"]

#: Stdlib loggers whose own handlers are dropped so that they propagate to ours.
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "service")
_LEADING_KEYS = ("timestamp", "level", "logger", "event", "request_id")
#: Keys the pipeline writes itself: nothing to redact.
_OWN_KEYS = frozenset({"timestamp", "level", "logger", "_record", "_from_structlog"})


@dataclass(frozen=True, slots=True)
class Verbatim:
    """A log value `redact_event` passes through untouched.

    For content that is redacted already (no need to pay twice) or that the operator
    chose to log in full (``LOG_CONTENT=full``).
    """

    value: object


def redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Structlog processor: redacts every key and every value of the event but `Verbatim` ones.

    Keys are redacted too (``log.info("x", **caller_supplied)``); two keys that redact
    alike are kept apart (``[EMAIL]``, ``[EMAIL]#2``).
    """
    redacted: EventDict = {}
    for key, value in event_dict.items():
        if key in _OWN_KEYS:
            redacted[key] = value
            continue
        name = redact_key(key) if isinstance(key, str) else key
        if name in redacted:
            suffix = 2
            while f"{name}#{suffix}" in redacted:
                suffix += 1
            name = f"{name}#{suffix}"
        redacted[name] = value.value if isinstance(value, Verbatim) else redact_value(value)
    return redacted


#: uvicorn's start-up line: its scheme, host and port are the operator's, not a caller's.
_LISTENER_LINE = "Uvicorn running on "


def keep_listener_line(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Structlog processor: uvicorn's ``Uvicorn running on http://HOST:PORT`` stays whole."""
    record = event_dict.get("_record")
    if (
        isinstance(record, logging.LogRecord)
        and record.name == "uvicorn.error"
        and isinstance(record.msg, str)
        and record.msg.startswith(_LISTENER_LINE)
    ):
        event_dict["event"] = Verbatim(event_dict["event"])
    return event_dict


def _leading_keys_first(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    ordered = {key: event_dict.pop(key) for key in _LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _dumps(event_dict: EventDict, **_: Any) -> str:
    # ASCII-only: "\n", "\x1b", "\u2028" and lone surrogates are all written as escapes.
    return jsonlib.dumps(event_dict, ensure_ascii=True, default=repr, separators=(",", ":"))


#: One lock for both writers, so lines from structlog and from stdlib never interleave.
_WRITE_LOCK = threading.Lock()


def write_line(line: str) -> None:
    """Write `line` and a newline to stdout, never interleaved with another writer's line."""
    # sys.stdout as it is now (not as it was at configuration: tests swap it).
    with _WRITE_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class _StdoutHandler(logging.Handler):
    """Writes each stdlib record as one line to stdout."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record))
        except RecursionError:
            raise
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


class _StdoutLogger:
    """Structlog's wrapped logger: writes each rendered event as one line to stdout."""

    def __init__(self, name: str) -> None:
        self.name = name  # read by structlog.stdlib.add_logger_name

    def msg(self, message: str) -> None:
        """Write `message` (every level method is this one)."""
        write_line(message)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _stdout_logger_factory(name: str = "root", *_args: object) -> _StdoutLogger:
    """``structlog.get_logger("service.x")`` names its lines like ``logging.getLogger``."""
    return _StdoutLogger(name)


def _shared_processors() -> list[Processor]:
    """Adds the context and time, renders tracebacks, redacts: for both kinds of events."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        keep_listener_line,
        redact_event,
        _leading_keys_first,
    ]


def _renderer(json: bool) -> Processor:
    if json:
        return structlog.processors.JSONRenderer(serializer=_dumps)
    # For a terminal: values are repr()-ed, so control characters are escaped here too.
    return structlog.processors.KeyValueRenderer(key_order=list(_LEADING_KEYS), drop_missing=True)


def _formatter(json: bool) -> structlog.stdlib.ProcessorFormatter:
    return structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _renderer(json)],
        foreign_pre_chain=_shared_processors(),
    )


def configure_logging(level: str, json: bool = True) -> None:
    """Send structlog events and stdlib records at `level` and above to stdout as JSON lines.

    Idempotent: a second call replaces the handler of the first (so an app created per
    test does not duplicate lines). structlog events and ``service.*`` loggers log at
    `level`; uvicorn's loggers lose their own handlers but keep the levels uvicorn's
    ``--log-level`` gave them (``--no-access-log`` still works); other libraries keep
    their levels (WARNING by default) and share the handler. `json` False renders
    ``key='value'`` pairs instead, for reading in a terminal.
    """
    structlog.configure(
        processors=[
            structlog.processors.StackInfoRenderer(),
            *_shared_processors(),
            _renderer(json),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=_stdout_logger_factory,
        cache_logger_on_first_use=False,
    )
    handler = _StdoutHandler()
    handler.setFormatter(_formatter(json))
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _StdoutHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    for name in ROUTED_LOGGERS:
        logger = logging.getLogger(name)
        for own_handler in list(logger.handlers):
            logger.removeHandler(own_handler)
        logger.propagate = True
    logging.getLogger("service").setLevel(level)
