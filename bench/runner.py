"""One benchmark run: start the fake model and the service, measure both paths, stop them.

For each upstream latency the fake model and the service start on free 127.0.0.1 ports;
latency pairs (direct vs. through the service) are measured alternately, then bursts and
throughput at each concurrency, and optionally an in-process cProfile of the service.
Raises :class:`bench.results.BenchError` when the harness itself fails.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from bench.load import (
    Probe,
    build_direct_probe,
    measure_burst,
    measure_latency,
    measure_throughput,
    open_client,
)
from bench.profiling import profile_in_process
from bench.results import (
    BenchError,
    Params,
    Profile,
    Results,
    Scenario,
    ThroughputRow,
    build_latency_rows,
    build_paired_median,
)
from bench.servers import (
    QUESTION,
    VARIABLES,
    build_max_inflight,
    build_service_env,
    fetch_cpu_ns,
    fetch_free_port,
    fetch_loadavg,
    fetch_rss_mb,
    run_process,
    wait_ready,
    write_prompts,
)

__all__ = ["run"]


async def run(params: Params) -> Results:
    """For each upstream latency: start both servers, measure, stop them."""
    started, t0, load_start = datetime.now(UTC), time.perf_counter_ns(), fetch_loadavg()
    bin_dir = Path(sys.executable).parent
    for tool in ("promptctl", "python"):
        if not (bin_dir / tool).exists():
            raise BenchError(f"{bin_dir / tool} not found: run with the project's venv python")
    scenarios: list[Scenario] = []
    profiles: list[tuple[int, Profile]] = []
    for index, latency_ms in enumerate(params.latency_ms):
        last = index == len(params.latency_ms) - 1
        scenario, found = await _run_scenario(params, latency_ms, bin_dir, profile=last)
        scenarios.append(scenario)
        profiles += found
    return Results(
        started=started,
        params=params,
        scenarios=scenarios,
        profiles=profiles,
        seconds=(time.perf_counter_ns() - t0) / 1e9,
        load_start=load_start,
        load_end=fetch_loadavg(),
    )


async def _run_scenario(
    params: Params, latency_ms: float, bin_dir: Path, *, profile: bool
) -> tuple[Scenario, list[tuple[int, Profile]]]:
    """Both paths against a fake model answering in `latency_ms`."""
    budget_ns = int(params.max_seconds * 1e9)
    top = max(params.concurrency)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        prompts = folder / "prompts"
        prompts.mkdir()
        write_prompts(prompts)
        model_port, service_port = fetch_free_port(), fetch_free_port()
        model_url = f"http://127.0.0.1:{model_port}"
        service_url = f"http://127.0.0.1:{service_port}"
        model_log, service_log = folder / "fake-model.log", folder / "service.log"
        model = stack.enter_context(
            run_process(
                [
                    *(str(bin_dir / "promptctl"), "fake-model", "--host", "127.0.0.1"),
                    *("--port", str(model_port), "--latency-ms", f"{latency_ms:g}"),
                    "--no-access-log",
                ],
                os.environ,
                stack.enter_context(model_log.open("wb")),
            )
        )
        async with open_client(top) as client:
            await wait_ready(client, f"{model_url}/v1/models", model, model_log)
            spawned = time.perf_counter()
            service = stack.enter_context(
                run_process(
                    [
                        *(str(bin_dir / "python"), "-m", "service"),
                        *("--host", "127.0.0.1", "--port", str(service_port)),
                        *("--log-level", "warning"),
                    ],
                    build_service_env(prompts, f"{model_url}/v1")
                    | {"MAX_INFLIGHT": str(build_max_inflight(top))},
                    stack.enter_context(service_log.open("wb")),
                )
            )
            await wait_ready(client, f"{service_url}/readyz", service, service_log)
            cold_start = time.perf_counter() - spawned
            direct = build_direct_probe(prompts, model_url)
            answer = {"prompt": "policy-qa", "question": QUESTION, "variables": VARIABLES}
            via_service = Probe(f"{service_url}/v1/answers", json.dumps(answer).encode())

            far = time.perf_counter_ns() + budget_ns
            await measure_latency(client, direct, via_service, params.warmup, far)
            rss = fetch_rss_mb(service.pid)
            for probe in (direct, via_service):
                await measure_burst(client, probe, top * 4, top, far)
            end_latency = time.perf_counter_ns() + budget_ns * 4 // 10
            cpu_before = fetch_cpu_ns(service.pid)
            direct_ns, service_ns = await measure_latency(
                client, direct, via_service, params.requests, end_latency
            )
            cpu_after = fetch_cpu_ns(service.pid)
            if len(direct_ns) < 2:
                raise BenchError("fewer than 2 latency pairs measured: raise --max-seconds")
            throughput: list[ThroughputRow] = []
            for concurrency in params.concurrency:
                share = budget_ns * 45 // 100 // len(params.concurrency)
                rows = await measure_throughput(
                    client,
                    [("direct", direct, model.pid), ("service", via_service, service.pid)],
                    params,
                    concurrency,
                    time.perf_counter_ns() + share,
                )
                if any(row.requests == 0 for row in rows):
                    raise BenchError("no throughput measured: raise --max-seconds")
                throughput += rows
        profiles: list[tuple[int, Profile]] = []
        if profile and params.profile_requests > 0:
            for concurrency in sorted({1, top}):
                found = await profile_in_process(
                    prompts,
                    f"{model_url}/v1",
                    via_service.body,
                    params.profile_requests,
                    time.perf_counter_ns() + budget_ns // 4,
                    concurrency,
                )
                profiles.append((concurrency, found))
    scenario = Scenario(
        latency_ms=latency_ms,
        pairs=len(direct_ns),
        latency=build_latency_rows(direct_ns, service_ns),
        paired_median_added_ms=build_paired_median(direct_ns, service_ns),
        service_cpu_ms_at_c1=(
            None
            if cpu_before is None or cpu_after is None
            else (cpu_after - cpu_before) / 1e6 / len(service_ns)
        ),
        throughput=throughput,
        service_rss_mb=rss,
        cold_start_seconds=cold_start,
    )
    return scenario, profiles
