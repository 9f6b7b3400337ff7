"""Logging set-up: JSON lines on stdout for stdlib, uvicorn and structlog events alike."""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
import structlog
from uvicorn.config import LOGGING_CONFIG

from service.telemetry.logs import ROUTED_LOGGERS, Verbatim, configure_logging

ReadLines = Callable[[], list[dict[str, object]]]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Puts the root and routed loggers and structlog back as they were."""
    names = ["", *ROUTED_LOGGERS]
    saved = {
        name: (
            list(logging.getLogger(name).handlers),
            logging.getLogger(name).level,
            logging.getLogger(name).propagate,
        )
        for name in names
    }
    config = structlog.get_config()
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    structlog.configure(**config)


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> ReadLines:
    """Reads what was written to stdout so far: every line must be one JSON object."""

    def read() -> list[dict[str, object]]:
        parsed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert all(isinstance(item, dict) for item in parsed)
        return parsed

    return read


@pytest.mark.parametrize(
    "name",
    ["uvicorn", "uvicorn.error", "uvicorn.access", "service.http.middleware", "some.library"],
)
def test_stdlib_records_come_out_as_json(name: str, lines: ReadLines) -> None:
    configure_logging("INFO")

    logging.getLogger(name).warning("disk at %d%%", 93)

    [line] = lines()
    assert line["event"] == "disk at 93%"
    assert (line["level"], line["logger"]) == ("warning", name)
    assert datetime.fromisoformat(str(line["timestamp"])).utcoffset() == timedelta(0)
    assert list(line)[:4] == ["timestamp", "level", "logger", "event"]


def test_structlog_events_come_out_as_json(lines: ReadLines) -> None:
    configure_logging("INFO")

    structlog.get_logger("service.answering.cache").info("cache", hit=True, size=3)

    [line] = lines()
    assert {k: v for k, v in line.items() if k != "timestamp"} == {
        "level": "info",
        "logger": "service.answering.cache",
        "event": "cache",
        "hit": True,
        "size": 3,
    }


def test_uvicorn_own_handlers_give_way(
    lines: ReadLines, capsys: pytest.CaptureFixture[str]
) -> None:
    # What `uvicorn --factory service.app:create_app` does before calling the factory.
    logging.config.dictConfig(LOGGING_CONFIG)
    configure_logging("INFO")

    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "10.1.2.3:5000", "GET", "/healthz", "1.1", 200
    )

    out = lines()
    assert [line["event"] for line in out] == [
        "Started server process [42]",
        '[IP]:5000 - "GET /healthz HTTP/1.1" 200',
    ]
    assert capsys.readouterr().err == ""
    assert all(logging.getLogger(name).handlers == [] for name in ROUTED_LOGGERS)


def test_uvicorn_levels_stay_as_uvicorn_set_them(lines: ReadLines) -> None:
    logging.getLogger("uvicorn.access").setLevel("WARNING")  # uvicorn --log-level warning
    configure_logging("DEBUG")

    logging.getLogger("uvicorn.access").info("hidden")
    logging.getLogger("service.x").debug("shown")

    assert [line["event"] for line in lines()] == ["shown"]


def test_configure_twice_does_not_duplicate(lines: ReadLines) -> None:
    configure_logging("INFO")
    configure_logging("INFO")

    logging.getLogger("service.x").info("once")
    structlog.get_logger().info("once too")

    assert [line["event"] for line in lines()] == ["once", "once too"]
    assert sum(type(h).__name__ == "_StdoutHandler" for h in logging.getLogger().handlers) == 1


def test_level_applies_to_both_kinds(lines: ReadLines) -> None:
    configure_logging("WARNING")

    logging.getLogger("service.x").info("hidden")
    structlog.get_logger().info("hidden")
    structlog.get_logger().warning("shown")
    logging.getLogger("service.x").error("shown too")

    assert [line["event"] for line in lines()] == ["shown", "shown too"]


def test_every_string_value_is_redacted_but_verbatim(lines: ReadLines) -> None:
    configure_logging("INFO")

    logging.getLogger("service.x").warning("user %s called from %s", "a@b.co", "10.0.0.7")
    structlog.get_logger().info(
        "upstream failed: key sk-proj-Abc123def456ghi789",
        detail={"to": ["jane@example.com"], "card": "4111 1111 1111 1111"},
        raw=Verbatim("opted in: jane@example.com"),
    )

    stdlib, native = lines()
    assert stdlib["event"] == "user [EMAIL] called from [IP]"
    assert native["event"] == "upstream failed: key [SECRET]"
    assert native["detail"] == {"to": ["[EMAIL]"], "card": "[CARD]"}
    assert native["raw"] == "opted in: jane@example.com"


def test_exceptions_render_on_one_line_redacted(lines: ReadLines) -> None:
    configure_logging("INFO")

    try:
        raise ValueError("bad variable: jane@example.com\nsecond line")
    except ValueError:
        logging.getLogger("service.x").exception("failed")
        structlog.get_logger().exception("failed too")

    for line in lines():
        exception = str(line["exception"])
        assert exception.startswith("Traceback")
        assert "ValueError: bad variable: [EMAIL]\nsecond line" in exception
        assert "jane@" not in exception


def test_request_id_from_context(lines: ReadLines) -> None:
    configure_logging("INFO")

    with structlog.contextvars.bound_contextvars(request_id="req-0001"):
        logging.getLogger("service.x").info("inside")
        structlog.get_logger().info("inside too")
    structlog.get_logger().info("outside")

    inside, inside_too, outside = lines()
    assert inside["request_id"] == inside_too["request_id"] == "req-0001"
    assert "request_id" not in outside
    assert list(inside)[4] == "request_id"


def test_key_value_rendering_escapes_controls(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=False)

    structlog.get_logger().info("hi", text='x"}\n{"level":"error"\x1b[31m')

    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("timestamp=")
    assert "event='hi'" in line
    assert "\\n" in line


def test_event_keys_are_redacted_and_kept_apart(lines: ReadLines) -> None:
    configure_logging("INFO")

    fields = {"jane@example.com": 1, "john@example.com": 2, "tone": "x"}
    structlog.get_logger("service.x").info("variables", **fields)

    (line,) = lines()
    assert {k: line[k] for k in ("[EMAIL]", "[EMAIL]#2", "tone")} == {
        "[EMAIL]": 1,
        "[EMAIL]#2": 2,
        "tone": "x",
    }
    assert "jane" not in json.dumps(line)


def test_access_line_query_strings_are_decoded_then_redacted(lines: ReadLines) -> None:
    configure_logging("INFO")
    logging.getLogger("uvicorn.access").setLevel("INFO")  # as uvicorn --log-level info does

    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "10.1.2.3:5000", "GET", "/v1/x?e=jane%40example.com", "1.1", 200
    )

    (line,) = lines()
    assert line["event"] == '[IP]:5000 - "GET /v1/x?e=[EMAIL] HTTP/1.1" 200'


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "0.0.0.0"])
def test_listener_line_keeps_its_address(host: str, lines: ReadLines) -> None:
    configure_logging("INFO")
    logging.getLogger("uvicorn.error").setLevel("INFO")  # as uvicorn --log-level info does

    message = "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)"
    logging.getLogger("uvicorn.error").info(message, "http", host, 8000)
    # The same words from another logger (a caller's text) get no such pass.
    logging.getLogger("service.x").info(message, "http", host, 8000)

    listener, other = lines()
    assert listener["event"] == f"Uvicorn running on http://{host}:8000 (Press CTRL+C to quit)"
    assert ("[IP]" in str(other["event"])) is (host == "10.1.2.3")
