"""WEB_CONCURRENCY: one process is served; more are refused with the reason, before start-up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service.server import decide_workers
from service.settings import Settings, list_variables


def test_one_worker_by_default() -> None:
    assert decide_workers(Settings()) == 1
    assert decide_workers(Settings(web_concurrency=1, qdrant_url="http://q:6333")) == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"web_concurrency": 2}, "embedded Qdrant store .* admits one process"),
        ({"web_concurrency": 4, "qdrant_path": ":memory:"}, "set QDRANT_URL"),
        ({"web_concurrency": 2, "qdrant_url": "http://q:6333"}, "metrics are kept per process"),
    ],
    ids=["embedded-folder", "embedded-memory", "qdrant-server"],
)
def test_more_workers_are_refused_with_the_reason(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decide_workers(Settings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_out_of_range_values_are_settings_errors(value: str) -> None:
    with pytest.raises(ValueError, match="web_concurrency"):
        Settings(web_concurrency=value)


def test_python_m_service_exits_2_naming_the_problem_before_binding() -> None:
    names = set(list_variables())
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env |= {"WEB_CONCURRENCY": "3", "QDRANT_PATH": ":memory:", "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-m", "service", "--port", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "WEB_CONCURRENCY=3" in done.stderr
    assert "set QDRANT_URL" in done.stderr
    assert "Traceback" not in done.stderr
