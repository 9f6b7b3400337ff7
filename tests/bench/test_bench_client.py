"""The bench's load client (bench.load) against the real fake model over HTTP, small counts."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.load import Probe, build_direct_probe, measure_burst, measure_throughput, open_client
from bench.results import BenchError, Params
from bench.servers import fetch_free_port, write_prompts
from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.faults import Faults
from tests.support.servers import serve_in_thread

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


class Census:
    """Wraps an app: the most requests it had in flight at once, and the client ports seen."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inflight = 0
        self.peak = 0
        self.ports: set[int] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.ports.add(scope["client"][1])
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1


@pytest.fixture
def state() -> FakeModelState:
    return FakeModelState(faults=Faults(latency_ms=20))


@pytest.fixture
def census(state: FakeModelState) -> Census:
    return Census(create_fake_model_app(state))


@pytest.fixture
def probe(census: Census, tmp_path: Path) -> Iterator[Probe]:
    write_prompts(tmp_path)
    with serve_in_thread(census) as url:
        yield build_direct_probe(tmp_path, url)


async def test_a_burst_keeps_the_concurrency_and_reuses_its_connections(
    probe: Probe, census: Census, state: FakeModelState
) -> None:
    samples: list[int] = []
    async with open_client(4) as client:
        done, elapsed = await measure_burst(
            client, probe, 24, 4, time.perf_counter_ns() + 20 * 10**9, samples
        )

    assert (done, len(samples), len(state.requests)) == (24, 24, 24)
    assert census.peak == 4  # the fake model saw exactly the client's concurrency
    assert len(census.ports) == 4  # keep-alive: one connection per worker, reused
    assert min(samples) >= 15_000_000  # each waited the fake model's 20 ms (timer slack)
    assert elapsed >= 6 * 15_000_000  # 24 requests, 4 at a time, ~20 ms each


async def test_throughput_rows_carry_the_client_cpu(probe: Probe) -> None:
    async with open_client(3) as client:
        rows = await measure_throughput(
            client,
            [("direct", probe, os.getpid())],
            Params(throughput_requests=12),
            3,
            time.perf_counter_ns() + 20 * 10**9,
        )

    (row,) = rows
    assert (row.path, row.requests, row.concurrency) == ("direct", 12, 3)
    assert row.client_cpu_ns is not None
    assert row.client_cpu_ms_per_request is not None
    assert row.client_cpu_ms_per_request > 0
    assert 0 < row.p50_ms <= row.p99_ms


async def test_a_non_200_answer_is_a_harness_failure(probe: Probe, state: FakeModelState) -> None:
    state.set_faults(Faults(status=503, error_rate=1.0))

    async with open_client(2) as client:
        with pytest.raises(BenchError, match=r"/v1/chat/completions: 503 "):
            await measure_burst(client, probe, 4, 2, time.perf_counter_ns() + 10 * 10**9)


async def test_a_refused_connection_is_a_harness_failure() -> None:
    nobody = Probe(f"http://127.0.0.1:{fetch_free_port()}/v1/chat/completions", b"{}")

    async with open_client(1) as client:
        with pytest.raises(BenchError, match=r"ClientConnectorError"):
            await measure_burst(client, nobody, 1, 1, time.perf_counter_ns() + 10 * 10**9)
