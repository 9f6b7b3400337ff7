"""The load generator: prepared requests, latency pairs and bursts at saturation.

The client is one ``aiohttp.ClientSession`` (``open_client``): a connection pool as large as
the highest concurrency, kept alive between requests. httpx's pool was the bottleneck here:
~8 ms of client CPU per request at 64 connections against ~0.4 ms with aiohttp (same run,
same fake model; bench/tried.md). Every request is timed with ``time.perf_counter_ns``;
anything but a 200 is a harness failure (``BenchError``), never a data point. The CPU the
client spends (this process, ``time.process_time_ns``) is measured around every burst.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from api.v1alpha1.manifests import load_manifests
from bench.results import BenchError, Params, ThroughputRow, percentile
from bench.servers import QUESTION, VARIABLES, fetch_cpu_ns
from prompting.rendering import compile_prompt, render_messages

__all__ = [
    "CLIENT_KEEPALIVE_SECONDS",
    "THROUGHPUT_ROUNDS",
    "Probe",
    "build_direct_probe",
    "call_probe",
    "measure_burst",
    "measure_latency",
    "measure_throughput",
    "open_client",
]

#: Throughput is measured in this many alternating rounds per path.
THROUGHPUT_ROUNDS = 4
#: Idle keep-alive connections are dropped by the client before the servers' own keep-alive
#: timeouts (5 s) close them, so that no request races a server-side close.
CLIENT_KEEPALIVE_SECONDS = 2.0


@dataclass(frozen=True)
class Probe:
    """One prepared request: the URL and the encoded JSON body."""

    url: str
    body: bytes


_JSON = {"content-type": "application/json"}


def build_direct_probe(prompts_dir: Path, base_url: str) -> Probe:
    """The chat request the service sends for QUESTION, rendered the same way."""
    (resource,) = load_manifests(prompts_dir)
    spec = resource.spec
    values = {v.name: v.default for v in spec.variables} | VARIABLES
    messages = render_messages(
        compile_prompt(spec.template), {**values, "question": QUESTION, "context": ""}
    )
    body = {
        "model": spec.model.name,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "temperature": spec.model.temperature,
        "max_tokens": spec.model.max_tokens,
    }
    return Probe(f"{base_url}/v1/chat/completions", json.dumps(body).encode())


def open_client(concurrency: int) -> aiohttp.ClientSession:
    """The load client: at most `concurrency` requests in flight, connections kept alive."""
    connector = aiohttp.TCPConnector(
        limit=concurrency, keepalive_timeout=CLIENT_KEEPALIVE_SECONDS, use_dns_cache=True
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=30.0),
        skip_auto_headers=("User-Agent",),
        raise_for_status=False,
    )


async def call_probe(client: aiohttp.ClientSession, probe: Probe) -> int:
    """Send one request and read its body; its wall time in ns. Anything but 200 is a
    harness failure, and so is a transport error."""
    started = time.perf_counter_ns()
    try:
        async with client.post(probe.url, data=probe.body, headers=_JSON) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        raise BenchError(f"{probe.url}: {type(error).__name__}: {error}") from error
    elapsed = time.perf_counter_ns() - started
    if status != 200:
        raise BenchError(f"{probe.url}: {status} {body[:300].decode(errors='replace')}")
    return elapsed


async def measure_latency(
    client: aiohttp.ClientSession, direct: Probe, service: Probe, pairs: int, deadline_ns: int
) -> tuple[list[int], list[int]]:
    """Alternate direct and service at concurrency 1 (order flipped each pair)."""
    direct_ns: list[int] = []
    service_ns: list[int] = []
    for i in range(pairs):
        if time.perf_counter_ns() > deadline_ns:
            break
        if i % 2:
            service_ns.append(await call_probe(client, service))
            direct_ns.append(await call_probe(client, direct))
        else:
            direct_ns.append(await call_probe(client, direct))
            service_ns.append(await call_probe(client, service))
    return direct_ns, service_ns


async def measure_burst(
    client: aiohttp.ClientSession,
    probe: Probe,
    count: int,
    concurrency: int,
    deadline_ns: int,
    samples: list[int] | None = None,
) -> tuple[int, int]:
    """`count` requests by `concurrency` workers (fewer if the deadline passes): (done, ns).

    Each request's wall time is appended to `samples` when given.
    """
    left = count
    done = 0

    async def worker() -> None:
        nonlocal left, done
        while left > 0 and time.perf_counter_ns() < deadline_ns:
            left -= 1
            elapsed = await call_probe(client, probe)
            if samples is not None:
                samples.append(elapsed)
            done += 1

    started = time.perf_counter_ns()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    except* BenchError as failed:
        raise failed.exceptions[0] from None
    return done, time.perf_counter_ns() - started


async def measure_throughput(
    client: aiohttp.ClientSession,
    paths: Sequence[tuple[str, Probe, int]],
    params: Params,
    concurrency: int,
    deadline_ns: int,
) -> list[ThroughputRow]:
    """Each (name, probe, server pid) in alternating rounds at `concurrency`; totals per path."""
    per_round = max(1, params.throughput_requests // THROUGHPUT_ROUNDS)
    totals = {name: [0, 0, 0, 0] for name, _, _ in paths}  # requests, ns, cpu ns, client ns
    samples: dict[str, list[int]] = {name: [] for name, _, _ in paths}
    cpu_known = True
    for round_ in range(THROUGHPUT_ROUNDS):
        ordered = paths if round_ % 2 == 0 else list(reversed(paths))
        for name, probe, pid in ordered:
            cpu_before, client_before = fetch_cpu_ns(pid), time.process_time_ns()
            done, elapsed = await measure_burst(
                client, probe, per_round, concurrency, deadline_ns, samples[name]
            )
            cpu_after, client_after = fetch_cpu_ns(pid), time.process_time_ns()
            totals[name][3] += client_after - client_before
            if cpu_before is None or cpu_after is None:
                cpu_known = False
            else:
                totals[name][2] += cpu_after - cpu_before
            totals[name][0] += done
            totals[name][1] += elapsed
    return [
        ThroughputRow(
            name,
            req,
            ns,
            cpu if cpu_known else None,
            concurrency,
            percentile(samples[name], 50) / 1e6 if samples[name] else 0.0,
            percentile(samples[name], 99) / 1e6 if samples[name] else 0.0,
            client_cpu_ns=client,
        )
        for name, (req, ns, cpu, client) in totals.items()
    ]
