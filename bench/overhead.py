"""What the service adds to a model call: latency at concurrency 1, throughput at saturation.

One run starts the fake model (``promptctl fake-model --latency-ms L``) and the service
(uvicorn, retrieval disabled) on free 127.0.0.1 ports, then sends the same chat request
straight to the fake model ("direct") and as ``POST /v1/answers`` through the service
("service"), alternating the two in one loop so that drift hits both alike. Results are
ratios and differences against the direct path measured in the same run; nothing here
asserts a speed. Optionally (``--profile-requests``) the service also runs in process under
cProfile to show where its own time goes.

    python -m bench.overhead [--requests N] [--concurrency C] [--latency-ms L] [--output F]

Exit code 0 whether or not the target is met; 1 when the harness itself fails::

    BenchError   a server did not start, a request failed, the prompt could not be adapted
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.load import Probe, build_direct_probe, measure_burst, measure_latency, measure_throughput
from bench.profiling import profile_in_process
from bench.report import render_report
from bench.results import (
    BenchError,
    LatencyRow,
    Params,
    Profile,
    Results,
    Scenario,
    ThroughputRow,
    assess_target,
    build_latency_rows,
    build_paired_median,
    percentile,
)
from bench.servers import (
    QUESTION,
    VARIABLES,
    build_bench_manifest,
    build_service_env,
    fetch_cpu_ns,
    fetch_free_port,
    fetch_rss_mb,
    run_process,
    wait_ready,
    write_prompts,
)

# The orchestration lives here; the other names are re-exported from the modules above so
# that callers of the one-module version (tests/service/test_shedding.py) keep working.
__all__ = [
    "BenchError",
    "LatencyRow",
    "Params",
    "Results",
    "ThroughputRow",
    "assess_target",
    "build_bench_manifest",
    "build_latency_rows",
    "build_service_env",
    "main",
    "parse_args",
    "percentile",
    "render_report",
    "run",
    "write_prompts",
]


#: Idle keep-alive connections are dropped by the client before the servers' own keep-alive
#: timeouts (5 s) close them, so that no request races a server-side close.
CLIENT_KEEPALIVE_SECONDS = 2.0


async def run(params: Params) -> Results:
    """For each upstream latency: start both servers, measure, stop them."""
    started, t0 = datetime.now(UTC), time.perf_counter_ns()
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
                ],
                os.environ,
                stack.enter_context(model_log.open("wb")),
            )
        )
        limits = httpx.Limits(
            max_connections=2 * top + 4,
            max_keepalive_connections=2 * top + 4,
            keepalive_expiry=CLIENT_KEEPALIVE_SECONDS,
        )
        async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
            await wait_ready(client, f"{model_url}/v1/models", model, model_log)
            spawned = time.perf_counter()
            service = stack.enter_context(
                run_process(
                    [
                        *(str(bin_dir / "python"), "-m", "service"),
                        *("--host", "127.0.0.1", "--port", str(service_port)),
                        *("--log-level", "warning"),
                    ],
                    build_service_env(prompts, f"{model_url}/v1"),
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


def _machine(argv: Sequence[str] | None) -> dict[str, str]:
    shown = sys.argv[1:] if argv is None else list(argv)
    return {
        "command": " ".join(["python -m bench.overhead", *shown]),
        "nproc": str(os.cpu_count() or "?"),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
    }


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _non_negative(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
        return value

    return parse


def _listed(kind: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        values = tuple(kind(part) for part in text.split(",") if part.strip())
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        return values

    return parse


def _shown(value: Any) -> str:
    return ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else str(value)


#: Each command-line option: the Params field it sets, its parser and its help.
_OPTIONS: list[tuple[str, Callable[[str], Any], str]] = [
    ("requests", _positive(int), "latency pairs at concurrency 1"),
    ("throughput_requests", _positive(int), "requests per path at saturation (4 x requests)"),
    ("concurrency", _listed(_positive(int)), "workers at saturation, comma-separated"),
    ("latency_ms", _listed(_non_negative(float)), "fake model latencies, ms, comma-separated"),
    ("warmup", _non_negative(int), "warm-up pairs"),
    ("profile_requests", _non_negative(int), "in-process cProfile requests; 0 skips"),
    ("max_seconds", _positive(float), "time cap of the measured phases, per upstream latency"),
    ("output", Path, "report to overwrite"),
]


def parse_args(argv: Sequence[str] | None) -> Params:
    """Params from the command line."""
    defaults = Params()
    parser = argparse.ArgumentParser(
        prog="python -m bench.overhead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for field, kind, text in _OPTIONS:
        flag = "--" + field.replace("_", "-")
        parser.add_argument(
            flag, type=kind, help=f"{text} (default {_shown(getattr(defaults, field))})"
        )
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    if "throughput_requests" not in given and "requests" in given:
        given["throughput_requests"] = 4 * given["requests"]
    return replace(defaults, **given)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the report, write it; 0 unless the harness failed."""
    params = parse_args(argv)
    try:
        results = asyncio.run(run(params))
    except (BenchError, OSError, httpx.HTTPError) as error:
        sys.stderr.write(f"bench.overhead: {type(error).__name__}: {error}\n")
        return 1
    report = render_report(results, _machine(argv))
    params.output.parent.mkdir(parents=True, exist_ok=True)
    params.output.write_text(report, encoding="utf-8")
    sys.stdout.write(report)
    sys.stdout.write(f"\nwritten to {params.output}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
