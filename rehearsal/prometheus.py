"""Run a throwaway Prometheus on a free 127.0.0.1 port, and ask it questions (rehearsals, tests).

Prometheus sends its first scrape about 6.4 s after it starts, whatever the scrape
interval (its target discovery publishes every 5 s), so start one per test session and
keep queries' windows short.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import yaml

from rehearsal.net import free_port

__all__ = [
    "PROMETHEUS",
    "PROMTOOL",
    "PromSample",
    "fetch_query",
    "run_prometheus",
    "wait_for",
]

#: The Debian binaries (``make system-deps``); ``None`` when they are not installed.
PROMETHEUS: str | None = shutil.which("prometheus") or (
    "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
)
PROMTOOL: str | None = shutil.which("promtool") or (
    "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None
)

#: One sample of an instant vector: its labels and value.
PromSample = tuple[dict[str, str], float]

T = TypeVar("T")


def _host_port(target: str) -> str:
    """``http://127.0.0.1:8000`` or ``127.0.0.1:8000`` → ``127.0.0.1:8000``."""
    return urlsplit(target).netloc if "://" in target else target


def build_config(targets: list[str], rule_files: list[Path], scrape_interval: str) -> str:
    """The prometheus.yml: one job, ``promptrollouts``, scraping `targets`' /metrics (pure)."""
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "rule_files": [str(path.resolve()) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "promptrollouts",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [_host_port(t) for t in targets]}],
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def fetch_query(base_url: str, expr: str, at: float | None = None) -> list[PromSample]:
    """An instant query's vector result (at `at`, Unix seconds, or now)."""
    params: dict[str, str | float] = {"query": expr}
    if at is not None:
        params["time"] = at
    response = httpx.get(f"{base_url}/api/v1/query", params=params, timeout=10)
    body = response.json()
    if response.status_code != 200 or body.get("status") != "success":
        raise RuntimeError(f"query {expr!r} failed: {response.status_code} {body}")
    result = body["data"]
    if result["resultType"] == "scalar":
        return [({}, float(result["result"][1]))]
    return [(item["metric"], float(item["value"][1])) for item in result["result"]]


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Call `probe` every 100 ms until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/-/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def run_prometheus(
    targets: list[str],
    rule_files: list[Path],
    scrape_interval: str = "1s",
    startup_timeout: float = 30.0,
    *,
    new_session: bool = False,
) -> Iterator[str]:
    """Start Prometheus scraping `targets` (``host:port`` or base URLs) with `rule_files`.

    Yields its base URL once every target has been scraped (``up == 1``); stops it and
    deletes its storage on exit. `new_session`: run it in a session of its own, so that a
    Ctrl-C in the terminal reaches only the caller (which then stops it).
    """
    if PROMETHEUS is None:
        raise FileNotFoundError("prometheus is not installed (run `make system-deps`)")
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-test-"))
    config_path = workdir / "prometheus.yml"
    config_path.write_text(build_config(targets, rule_files, scrape_interval))
    log_path = workdir / "prometheus.log"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = [
        PROMETHEUS,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own command, no shell
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=new_session
        )
    try:

        def started() -> bool | None:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited ({process.returncode}):\n{_tail(log_path)}")
            return True if _ready(base_url) else None

        def all_up() -> bool | None:
            up = fetch_query(base_url, 'up{job="promptrollouts"} == 1')
            return True if len(up) == len(targets) else None

        try:
            wait_for(started, startup_timeout, "prometheus to be ready")
            wait_for(all_up, startup_timeout, "every target to be scraped (up == 1)")
        except TimeoutError as error:
            raise RuntimeError(f"{error}:\n{_tail(log_path)}") from error
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _tail(path: Path, lines: int = 30) -> str:
    return (
        "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
    )
