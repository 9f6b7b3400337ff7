"""WEB_CONCURRENCY: which worker counts run, what is refused and why, and the pieces the
workers need (a picklable config, the metrics folder, the multi-process environment).

The real multi-worker run is tests/service/test_workers_e2e.py.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from service.http.connections import ConnectionLimits, GuardedHttpToolsProtocol
from service.http.shedding import ReportingInflightLimiter
from service.server import AppFactory, build_server_config, main
from service.settings import Settings, list_variables
from service.supervisor import MetricsFolderError, open_metrics_folder
from service.telemetry.multiprocess import clear_metric_files
from service.telemetry.multiprocess_env import (
    apply_multiprocess_env,
    decide_multiprocess_env,
    multiprocess_dir,
)
from service.workers import assess_workers, build_worker_settings, decide_workers

REDIS = "redis://127.0.0.1:6379/0"
SERVER = "http://qdrant:6333"


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"web_concurrency": 1, "tenant_rpm": 10},
        {"web_concurrency": 2, "qdrant_url": SERVER, "redis_url": REDIS},
        {"web_concurrency": 4, "qdrant_path": ":memory:", "redis_url": REDIS, "tenant_rpm": 60},
    ],
    ids=["default-one", "one-needs-nothing", "qdrant-server-and-redis", "memory-store-and-redis"],
)
def test_workers_that_run(settings: dict[str, object]) -> None:
    decided = Settings(**settings)  # type: ignore[arg-type]
    assert assess_workers(decided) == []
    assert decide_workers(decided) == decided.web_concurrency


@pytest.mark.parametrize(
    ("settings", "present", "absent"),
    [
        (
            {"web_concurrency": 2, "redis_url": REDIS},
            ["WEB_CONCURRENCY=2: the embedded Qdrant store in QDRANT_PATH=var/qdrant admits "
             "one process", "set QDRANT_URL", "QDRANT_PATH=:memory:"],
            ["REDIS_URL"],
        ),
        (
            {"web_concurrency": 2, "qdrant_url": SERVER},
            ["without REDIS_URL", "Idempotency-Key", "POST /v1/feedback", "set REDIS_URL"],
            ["TENANT_RPM", "QDRANT"],
        ),
        (
            {"web_concurrency": 3, "qdrant_path": ":memory:", "tenant_rpm": 60},
            ["WEB_CONCURRENCY=3", "TENANT_RPM quotas (each worker would admit 60 a minute)"],
            ["QDRANT"],
        ),
    ],
    ids=["persistent-embedded-store", "no-redis", "no-redis-with-tenant-quota"],
)  # fmt: skip
def test_refusals_name_the_problem_and_the_fix(
    settings: dict[str, object], present: list[str], absent: list[str]
) -> None:
    with pytest.raises(ValueError, match=r"^WEB_CONCURRENCY=") as refused:
        decide_workers(Settings(**settings))  # type: ignore[arg-type]
    for text in present:
        assert text in str(refused.value)
    for text in absent:
        assert text not in str(refused.value)
    assert "replicas" in str(refused.value)


def test_every_problem_is_named_at_once() -> None:
    problems = assess_workers(Settings(web_concurrency=2, tenant_rpm=5))
    assert len(problems) == 2
    assert "QDRANT_PATH" in problems[0] and "REDIS_URL" in problems[1]


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_out_of_range_values_are_settings_errors(value: str) -> None:
    with pytest.raises(ValueError, match="web_concurrency"):
        Settings(web_concurrency=value)


def test_workers_share_one_generated_idempotency_secret() -> None:
    one = Settings(redis_url=REDIS)
    assert build_worker_settings(one, 1, "s3cret") is one  # one process: generated in it
    many = Settings(web_concurrency=2, qdrant_url=SERVER, redis_url=REDIS)
    shared = build_worker_settings(many, 2, "s3cret")
    assert shared.idempotency_secret is not None
    assert shared.idempotency_secret.get_secret_value() == "s3cret"
    given = Settings(web_concurrency=2, idempotency_secret="mine", redis_url=REDIS)
    assert build_worker_settings(given, 2, "s3cret") is given


@pytest.mark.parametrize(
    ("environ", "kept"),
    [
        ({}, False),
        ({"WEB_CONCURRENCY": "1"}, False),
        ({"WEB_CONCURRENCY": " "}, False),
        ({"WEB_CONCURRENCY": "2"}, True),
        ({"web_concurrency": "3"}, True),
        ({"WEB_CONCURRENCY": "two"}, True),
    ],
    ids=["unset", "one", "blank", "two", "lower-case-name", "not-a-number-left-to-settings"],
)
def test_multiprocess_metrics_only_with_several_workers(
    environ: dict[str, str], kept: bool
) -> None:
    assert decide_multiprocess_env(environ) is kept
    environ = environ | {"PROMETHEUS_MULTIPROC_DIR": "/m", "prometheus_multiproc_dir": "/m"}
    apply_multiprocess_env(environ)
    assert (multiprocess_dir(environ) == "/m") is kept


def test_the_server_config_pickles_for_spawned_workers() -> None:
    limits = {"max_header_bytes": 2048, "header_timeout_seconds": 3.0, "max_connections": 7}
    settings = Settings(http_parser="httptools", **limits)  # type: ignore[arg-type]
    config = build_server_config(settings, "127.0.0.1", 0, workers=2)
    assert config.workers == 2
    copy = pickle.loads(pickle.dumps(config))
    assert copy.app == AppFactory(settings, "127.0.0.1")  # the factory and its settings
    factory = copy.http
    assert factory.func is GuardedHttpToolsProtocol
    assert factory.keywords == {"limits": ConnectionLimits(3.0, 2048, 7)}


def test_the_workers_parent_does_not_load_the_app() -> None:
    code = "import sys, service.server; print('service.app' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"


def test_one_worker_config_does_not_read_web_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "4")  # uvicorn reads it when workers is not given
    assert build_server_config(Settings(), "127.0.0.1", 0).workers == 1


def test_reporting_limiter_reports_every_change() -> None:
    seen: list[float] = []
    limiter = ReportingInflightLimiter(1, seen.append)
    assert limiter.try_acquire()
    assert not limiter.try_acquire()  # shed: the count did not change, nothing reported
    limiter.release()
    assert seen == [1, 0]


def test_metrics_folder_given_is_cleared_of_old_files_only(tmp_path: Path) -> None:
    (tmp_path / "counter_1.db").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("mine")
    environ = {"prometheus_multiproc_dir": str(tmp_path)}
    with open_metrics_folder(environ) as folder:
        assert folder == str(tmp_path)
        assert environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert tmp_path.is_dir()
    assert clear_metric_files(tmp_path) == 0


def test_metrics_folder_is_private_and_removed_when_none_is_given() -> None:
    environ: dict[str, str] = {}
    with open_metrics_folder(environ) as folder:
        assert environ["PROMETHEUS_MULTIPROC_DIR"] == folder
        assert Path(folder).is_dir()
        assert (Path(folder).stat().st_mode & 0o077) == 0  # mkdtemp: owner only
        (Path(folder) / "counter_1.db").write_bytes(b"x")
    assert not Path(folder).exists()


def test_a_metrics_folder_that_cannot_hold_files_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with (
        pytest.raises(MetricsFolderError, match=f"PROMETHEUS_MULTIPROC_DIR={blocker}/m"),
        open_metrics_folder({"PROMETHEUS_MULTIPROC_DIR": str(blocker / "m")}),
    ):
        pass
    # Through main: exit 2 with the message, before the port is bound.
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    monkeypatch.setenv("QDRANT_PATH", ":memory:")
    monkeypatch.setenv("REDIS_URL", REDIS)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(blocker / "m"))
    with pytest.raises(SystemExit) as stopped:
        main(["--port", "9"])
    assert stopped.value.code == 2


def test_python_m_service_exits_2_naming_every_problem_before_binding() -> None:
    names = set(list_variables())
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env |= {"WEB_CONCURRENCY": "3", "TENANT_RPM": "60", "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-m", "service", "--port", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith("python -m service: WEB_CONCURRENCY=3: the embedded Qdrant")
    assert "set REDIS_URL" in lines[1] and "TENANT_RPM" in lines[1]
    assert "Traceback" not in done.stderr
