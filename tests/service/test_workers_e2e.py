"""``python -m service`` with WEB_CONCURRENCY=2, for real: two workers answer, /metrics adds
them up exactly, and SIGTERM stops every process.

Real parts: the fake model over HTTP (in a thread here), redis-server, the in-memory
embedded store (each worker its own copy), the service as its own process tree. Which
worker answered is read from the metric files each worker writes (named by its pid) in
the PROMETHEUS_MULTIPROC_DIR the test gives; nothing is added to responses for it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from bench.servers import QUESTION, VARIABLES, build_service_env, write_prompts
from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.faults import Faults
from tests.service.http.routers.conftest import ROOT
from tests.support.net import free_port
from tests.support.redis import run_redis_server
from tests.support.servers import serve_in_thread

ANSWER = {"prompt": "policy-qa", "question": QUESTION, "variables": VARIABLES}
#: Answers sent in rounds of this many concurrent new connections until both workers
#: have served some (the kernel hands each connection to whichever worker accepts first).
ROUND = 8
MOST_ANSWERS = 400


@dataclass
class Workers:
    """The running service: its parent process, ports, log and metrics folder."""

    process: subprocess.Popen[bytes]
    url: str
    metrics_url: str
    folder: Path
    log: Path

    def children(self) -> set[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in path.read_text().split()}


def _answers_by_pid(folder: Path) -> dict[int, float]:
    """promptrollouts_requests_total of each worker that answered, read from its own
    counter file (every worker creates the series at 0 when it loads the versions)."""
    counts: dict[int, float] = {}
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        entries = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
        for key, value, _timestamp, _pos in entries:
            if json.loads(key)[1] == "promptrollouts_requests_total":
                counts[pid] = counts.get(pid, 0.0) + value
    return {pid: count for pid, count in counts.items() if count > 0}


def _scraped_answers(url: str) -> float:
    """The sum of promptrollouts_requests_total in one scrape."""
    text = httpx.get(url, timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "promptrollouts_requests"
        for sample in family.samples
        if sample.name == "promptrollouts_requests_total"
    )


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    folder = tmp_path_factory.mktemp("workers")
    write_prompts(folder)
    metrics = folder / "metrics"
    state = FakeModelState(faults=Faults(latency_ms=20))
    with serve_in_thread(create_fake_model_app(state)) as model, run_redis_server() as redis:
        port, metrics_port = free_port(), free_port()
        env = build_service_env(folder, f"{model}/v1") | {
            "PYTHONPATH": str(ROOT),
            "WEB_CONCURRENCY": "2",
            "REDIS_URL": redis,
            "METRICS_PORT": str(metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
            "MAX_HEADER_BYTES": "2048",
        }
        log = folder / "service.log"
        command = [sys.executable, "-m", "service", "--port", str(port), "--no-access-log"]
        with log.open("w") as output:
            process = subprocess.Popen(command, env=env, cwd=folder, stdout=output, stderr=output)
        running = Workers(
            process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics",
            metrics, log,
        )  # fmt: skip
        try:
            _wait_for_two_ready_workers(running)
            yield running
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


def _wait_for_two_ready_workers(running: Workers) -> None:
    """Until both workers finished start-up (each logs it once; the parent never does)."""
    deadline = time.monotonic() + 180
    while running.log.read_text().count("Application startup complete") < 2:
        assert running.process.poll() is None, running.log.read_text()
        assert time.monotonic() < deadline, running.log.read_text()
        time.sleep(0.2)
    assert httpx.get(f"{running.url}/readyz", timeout=10).is_success


async def _answer_round(url: str) -> None:
    async def one() -> None:
        # A new connection each: a kept-alive one would stay with one worker.
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            reply = await client.post("/v1/answers", json=ANSWER)
            assert reply.status_code == 200, reply.text

    await asyncio.gather(*(one() for _ in range(ROUND)))


def test_two_workers_answer_and_metrics_add_up_exactly(workers: Workers) -> None:
    sent = 0
    while len(_answers_by_pid(workers.folder)) < 2 and sent < MOST_ANSWERS:
        asyncio.run(_answer_round(workers.url))
        sent += ROUND
    by_pid = _answers_by_pid(workers.folder)
    assert sent > 0
    assert len(by_pid) == 2, f"one worker served all {sent} answers: {by_pid}"
    assert set(by_pid) <= workers.children()
    assert sum(by_pid.values()) == sent
    # Every scrape of METRICS_PORT (both workers listen there), whichever worker answers
    # it, reports the answers of both.
    for _ in range(6):
        assert _scraped_answers(workers.metrics_url) == sent
    text = httpx.get(workers.metrics_url, timeout=10).text
    assert 'promptrollouts_version_weight_percent{prompt="policy-qa",version="1.1.0"} 100.0' in (
        text
    )
    assert "promptrollouts_inflight_requests 0.0" in text


def test_connection_limits_reach_every_worker(workers: Workers) -> None:
    # The guarded protocol is pickled into each worker with its limits: an oversized head
    # is refused whichever worker accepts the connection.
    for _ in range(6):
        big = httpx.get(f"{workers.url}/healthz", headers={"x-big": "a" * 3000}, timeout=10)
        assert big.status_code == 431
        assert big.headers["content-type"] == "application/problem+json"


def test_sigterm_stops_every_process_and_marks_the_workers_dead(workers: Workers) -> None:
    children = workers.children()
    served = set(_answers_by_pid(workers.folder))
    assert served <= children
    assert {p.name for p in workers.folder.glob("gauge_livesum_*.db")}
    workers.process.send_signal(signal.SIGTERM)
    assert workers.process.wait(timeout=60) == 0, workers.log.read_text()
    deadline = time.monotonic() + 10  # multiprocessing's resource tracker exits last
    while any(os.path.exists(f"/proc/{pid}") for pid in children):
        assert time.monotonic() < deadline, f"left running: {children}"
        time.sleep(0.05)
    log = workers.log.read_text()
    assert log.count("Application shutdown complete") == 2  # both shut down gracefully
    assert "Traceback" not in log
    # Live gauges of the exited workers are dropped; their counters stay (a given folder
    # is kept for the operator).
    assert not list(workers.folder.glob("gauge_livesum_*.db"))
    assert {int(p.stem.split("_")[-1]) for p in workers.folder.glob("counter_*.db")} == served
