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
import cProfile
import json
import math
import os
import platform
import pstats
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import yaml
from starlette.types import Message, Scope

from api.v1alpha1.manifests import load_manifests
from service.rendering import compile_prompt, referenced_variables, render_messages
from service.settings import Settings, list_variables

__all__ = [
    "BenchError",
    "LatencyRow",
    "Params",
    "Results",
    "ThroughputRow",
    "assess_target",
    "build_bench_manifest",
    "build_latency_rows",
    "main",
    "percentile",
    "render_report",
]

REPO = Path(__file__).resolve().parents[1]
SOURCE_PROMPT = REPO / "prompts" / "policy-qa-1.1.0.yaml"
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks.md"
QUESTION = "Can I get a refund for a digital item I bought last week?"
VARIABLES: dict[str, Any] = {"tone": "formal", "max_length": 80}
#: The target: added latency at p50 and p99, in ms, with retrieval disabled.
TARGET_P50_MS = 1.0
TARGET_P99_MS = 5.0
PERCENTILES = (50, 90, 99)
STARTUP_TIMEOUT_SECONDS = 60.0
#: Throughput is measured in this many alternating rounds per path.
THROUGHPUT_ROUNDS = 4
#: Own-time hotspots listed in the report.
TOP_FUNCTIONS = 8


class BenchError(Exception):
    """The harness could not measure (not: the target was missed)."""


@dataclass(frozen=True)
class Params:
    """What one run measures."""

    requests: int = 600
    throughput_requests: int = 2400
    concurrency: int = 16
    latency_ms: float = 20.0
    warmup: int = 30
    profile_requests: int = 200
    max_seconds: float = 100.0
    output: Path = DEFAULT_OUTPUT


@dataclass(frozen=True)
class LatencyRow:
    """One percentile of both paths, in ms."""

    label: str
    direct_ms: float
    service_ms: float

    @property
    def added_ms(self) -> float:
        """What the service adds at this percentile."""
        return self.service_ms - self.direct_ms

    @property
    def ratio(self) -> float:
        """Service over direct."""
        return self.service_ms / self.direct_ms if self.direct_ms else float("nan")


@dataclass(frozen=True)
class ThroughputRow:
    """One path at saturation: requests, wall time and the CPU its server spent."""

    path: str
    requests: int
    elapsed_ns: int
    server_cpu_ns: int | None

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / (self.elapsed_ns / 1e9) if self.elapsed_ns else 0.0

    @property
    def cpu_ms_per_request(self) -> float | None:
        """CPU of the process that answered the client, per request."""
        if self.server_cpu_ns is None or not self.requests:
            return None
        return self.server_cpu_ns / 1e6 / self.requests


@dataclass(frozen=True)
class Hotspot:
    """Own (exclusive) time of one function or package, per profiled request."""

    name: str
    us_per_request: float
    share: float


@dataclass(frozen=True)
class Profile:
    """Where the in-process service spends its own time."""

    requests: int
    packages: list[Hotspot]
    functions: list[Hotspot]


@dataclass(frozen=True)
class Results:
    """Everything one run measured."""

    started: datetime
    params: Params
    pairs: int
    latency: list[LatencyRow]
    paired_median_added_ms: float
    #: CPU of the service process per answer during the latency loop, in ms.
    service_cpu_ms_at_c1: float | None
    throughput: list[ThroughputRow]
    profile: Profile | None
    seconds: float


# --- pure: statistics, the prompt, the report -------------------------------------------


def percentile(samples: Sequence[int], q: float) -> int:
    """Nearest-rank percentile `q` (0-100] of `samples`."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = min(len(ordered), max(1, math.ceil(len(ordered) * q / 100)))
    return ordered[rank - 1]


def build_latency_rows(direct_ns: Sequence[int], service_ns: Sequence[int]) -> list[LatencyRow]:
    """p50/p90/p99 of both paths, in ms."""
    return [
        LatencyRow(f"p{q}", percentile(direct_ns, q) / 1e6, percentile(service_ns, q) / 1e6)
        for q in PERCENTILES
    ]


def build_paired_median(direct_ns: Sequence[int], service_ns: Sequence[int]) -> float:
    """Median of service - direct over pairs sent back to back, in ms (robust to drift)."""
    diffs = [s - d for d, s in zip(direct_ns, service_ns, strict=True)]
    return percentile(diffs, 50) / 1e6


def assess_target(rows: Sequence[LatencyRow]) -> dict[str, tuple[float, float, bool]]:
    """Each target, as (limit ms, measured added ms, met)."""
    added = {row.label: row.added_ms for row in rows}
    return {
        label: (limit, added[label], added[label] <= limit)
        for label, limit in (("p50", TARGET_P50_MS), ("p99", TARGET_P99_MS))
    }


def build_bench_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest without retrieval: no `retrieval`, no CONTEXT block in the user template."""
    spec = dict(manifest["spec"])
    spec.pop("retrieval", None)
    template = dict(spec["template"])
    kept = [
        line
        for line in str(template["user"]).splitlines()
        if "context }}" not in line and line.strip() != "CONTEXT:"
    ]
    template["user"] = "\n".join(kept) + "\n"
    spec["template"] = template
    return {**manifest, "spec": spec}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_report(results: Results, machine: Mapping[str, str]) -> str:
    """docs/benchmarks.md for one run."""
    p = results.params
    targets = assess_target(results.latency)
    met = all(ok for _, _, ok in targets.values())
    direct, service = results.throughput
    tput_ratio = service.rps / direct.rps if direct.rps else float("nan")
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench.overhead` (`make bench`); the whole file is rewritten",
        "by each run. Numbers from a shared 2-core machine are noisy: compare ratios taken",
        "in one run, not absolute numbers across runs.",
        "",
        "Overload (load shedding with `MAX_INFLIGHT`) is measured by its own test and",
        "recorded in [benchmarks-overload.md](benchmarks-overload.md).",
        "Resilience under upstream rate limits (the 1,000-request load test) is recorded in",
        "[benchmarks-resilience.md](benchmarks-resilience.md), which this tool does not rewrite.",
        "",
        "## Service overhead over a direct model call",
        "",
        f"- Date: {results.started:%Y-%m-%d %H:%M} UTC; the run took {results.seconds:.0f} s.",
        f"- Machine: {machine['nproc']} CPUs (nproc), Python {machine['python']}, "
        f"{machine['platform']}.",
        "",
        "### Method",
        "",
        f"- The fake model (`promptctl fake-model --latency-ms {p.latency_ms:g}`) and the service",
        "  (`python -m service`, one worker, `LOG_LEVEL=WARNING`) run as",
        "  subprocesses on 127.0.0.1; the client is one `httpx.AsyncClient` with keep-alive.",
        "- The service serves a copy of policy-qa 1.1.0 without `retrieval` (no CONTEXT block,",
        "  no embedding, no vector search; `CORPUS_DIR` empty). Variables, guardrails and the",
        "  resilience layer stay on.",
        "- *direct*: `POST /v1/chat/completions` to the fake model with the messages the service",
        "  renders; *service*: `POST /v1/answers` with the same question and variables.",
        "- Latency: concurrency 1, direct and service alternating in one loop (order flipped",
        "  each pair), after a warm-up; timed with `time.perf_counter_ns`. *Added* is the",
        "  difference of the percentiles; the paired median is the median of the per-pair",
        "  differences.",
        f"- Throughput: {p.concurrency} concurrent workers, {THROUGHPUT_ROUNDS} alternating rounds",
        "  per path. *Server CPU/request* is the CPU time (user+sys, from `/proc`) of the process",
        "  the client talked to (fake model for direct, service for service) over its rounds.",
        "  The client, the service and the fake model share the same cores.",
        "",
        "### Parameters",
        "",
        "| parameter | value |",
        "| --- | --- |",
        f"| latency pairs (measured / asked) | {results.pairs} / {p.requests} |",
        f"| throughput requests per path | {p.throughput_requests} |",
        f"| concurrency | {p.concurrency} |",
        f"| fake model latency | {p.latency_ms:g} ms |",
        f"| warm-up per path | {p.warmup} |",
        f"| time cap | {p.max_seconds:g} s |",
        "",
        f"### Latency at concurrency 1 ({results.pairs} pairs)",
        "",
        "| percentile | direct (ms) | service (ms) | added (ms) | service/direct |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {r.label} | {r.direct_ms:.2f} | {r.service_ms:.2f} | {r.added_ms:.2f} "
            f"| {r.ratio:.3f} |"
            for r in results.latency
        ),
        "",
        f"Paired median of service - direct: {results.paired_median_added_ms:.2f} ms. "
        f"Service process CPU per answer in this loop: {_fmt(results.service_cpu_ms_at_c1)} ms.",
        "",
        f"### Throughput at concurrency {p.concurrency}",
        "",
        "| path | requests | requests/s | server CPU/request (ms) |",
        "| --- | --- | --- | --- |",
        *(
            f"| {t.path} | {t.requests} | {t.rps:.1f} | {_fmt(t.cpu_ms_per_request)} |"
            for t in results.throughput
        ),
        "",
        f"Service/direct throughput ratio: {tput_ratio:.3f}.",
        "",
        "### Target",
        "",
        "Retrieval disabled: added p50 ≤ 1 ms and added p99 ≤ 5 ms.",
        "",
        "| target | measured added (ms) | met |",
        "| --- | --- | --- |",
        *(
            f"| {label} ≤ {limit:g} ms | {measured:.2f} | {'yes' if ok else 'no'} |"
            for label, (limit, measured, ok) in targets.items()
        ),
        "",
        f"**Target {'met' if met else 'not met'}.**",
        "",
        "### Interpretation",
        "",
        *_interpretation(results),
    ]
    if results.profile is not None:
        lines += _profile_lines(results.profile)
    return "\n".join(lines) + "\n"


def _interpretation(results: Results) -> list[str]:
    rows = {r.label: r for r in results.latency}
    p50, p99 = rows["p50"], rows["p99"]
    direct, service = results.throughput
    profile = results.profile
    cpu = results.service_cpu_ms_at_c1
    cpu_text = (
        f" The service process spent {cpu:.2f} ms of CPU per answer in that loop "
        f"({cpu / p50.added_ms * 100:.0f} % of the added p50"
        + (
            f"; {service.cpu_ms_per_request:.2f} ms at saturation)."
            if service.cpu_ms_per_request is not None
            else ")."
        )
        if cpu is not None and p50.added_ms > 0
        else ""
    )
    out = [
        f"- At concurrency 1 the service adds {p50.added_ms:.2f} ms at p50 and "
        f"{p99.added_ms:.2f} ms at p99 to a {p50.direct_ms:.1f} ms direct call. With one "
        "request in flight nothing queues, so the added time is the service's own work "
        "(validation, rendering, resilience layer, a second HTTP client hop with its JSON, "
        f"guardrails, metrics, the response model) plus one more loopback hop.{cpu_text}",
        f"- At saturation the service answers {service.rps:.0f} requests/s against "
        f"{direct.rps:.0f} direct (ratio {service.rps / direct.rps:.2f}). On 2 cores the "
        "client, the service and the fake model compete for CPU, so this ratio follows CPU "
        "per request; a model on another host would leave the service more CPU.",
    ]
    if profile is not None and profile.packages:
        shares = {h.name: h.share for h in profile.packages}
        top = ", ".join(f"{h.name} {h.share * 100:.0f} %" for h in profile.packages[:5])
        out.append(
            f"- Own time by package (profile below): {top}; the service's own code is "
            f"{shares.get('service', 0.0) * 100:.0f} %. The rest is the stack around it: "
            "asyncio scheduling, FastAPI request handling, and the outbound "
            "httpx/httpcore/h11 client."
        )
        if shares.get("anyio", 0.0) >= 0.05:
            out.append(
                "- anyio's share is its thread pool and httpcore's sockets: FastAPI runs "
                "each plain `def` dependency (`service/dependencies.py`, five for "
                "`/v1/answers`) in a worker thread; `async def` dependencies would skip "
                "those hops."
            )
    return [*out, ""]


def _profile_lines(profile: Profile) -> list[str]:
    return [
        f"### Hotspots (cProfile, service in process, {profile.requests} requests)",
        "",
        "The service app is called directly as ASGI (no uvicorn HTTP parsing, which the",
        "subprocess runs above include) against the same fake model. The profiler's clock is",
        "the event-loop thread's CPU time (`time.thread_time_ns`), so waiting is not counted;",
        "its per-call cost inflates the microseconds several times over, so read the shares.",
        "Time in C builtins is charged to the package that called them in the first table.",
        "",
        "| package | own time/request (µs) | share |",
        "| --- | --- | --- |",
        *(
            f"| {h.name} | {h.us_per_request:.0f} | {h.share * 100:.1f} % |"
            for h in profile.packages[:8]
        ),
        "",
        "| function | own time/request (µs) | share |",
        "| --- | --- | --- |",
        *(
            f"| `{h.name}` | {h.us_per_request:.0f} | {h.share * 100:.1f} % |"
            for h in profile.functions
        ),
        "",
    ]


_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def classify_frame(filename: str) -> str:
    """The package a profiled function belongs to, from its file name."""
    if filename == "~":
        return "C builtins"
    path = Path(filename)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
    resolved = path.resolve()
    for root, prefix in ((REPO, ""), (_STDLIB, "stdlib ")):
        if resolved.is_relative_to(root):
            return prefix + resolved.relative_to(root).parts[0].removesuffix(".py")
    return "other"


_Func = tuple[str, int, str]


def build_profile(stats: pstats.Stats, requests: int) -> Profile:
    """Own time per package and the top functions, without the selector's idle wait.

    Time in C builtins (socket calls, json, locks) goes to the package that called them.
    """
    raw: Mapping[_Func, tuple[int, int, float, float, Mapping[_Func, tuple[Any, ...]]]]
    raw = getattr(stats, "stats", {})
    own: dict[_Func, float] = {
        func: entry[2]
        for func, entry in raw.items()
        if not ("poll" in func[2] and "select" in func[2])
    }
    total = sum(own.values()) or 1.0
    by_package: dict[str, float] = defaultdict(float)
    for func, seconds in own.items():
        callers = raw[func][4]
        if func[0] != "~" or not callers:
            by_package[classify_frame(func[0])] += seconds
            continue
        for caller, (_, _, caller_own, *_rest) in callers.items():
            by_package[classify_frame(caller[0])] += caller_own

    def spot(name: str, seconds: float) -> Hotspot:
        return Hotspot(name, seconds / requests * 1e6, seconds / total)

    top = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:TOP_FUNCTIONS]
    return Profile(
        requests,
        [spot(n, t) for n, t in sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)],
        [
            spot(f"{classify_frame(f)}:{Path(f).name}:{line}({name})", t)
            for (f, line, name), t in top
        ],
    )


# --- I/O: processes, requests, profile --------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One prepared request: the URL and the encoded JSON body."""

    url: str
    body: bytes


_JSON = {"content-type": "application/json"}


def fetch_free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fetch_cpu_ns(pid: int) -> int | None:
    """User+system CPU of a process (Linux /proc), or None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


@contextmanager
def run_process(
    argv: Sequence[str], env: Mapping[str, str], log: IO[bytes]
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a subprocess; always stop it (terminate, then kill) and reap it."""
    process = subprocess.Popen(  # noqa: S603 - fixed argv of our own venv's tools
        list(argv), env=dict(env), cwd=REPO, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def wait_ready(
    client: httpx.AsyncClient, url: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    """Poll `url` until it answers 200, the process dies, or the start-up timeout passes."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{url}: server exited with {process.returncode}:\n{_tail(log)}")
        try:
            if (await client.get(url, timeout=2.0)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise BenchError(f"{url}: not ready after {STARTUP_TIMEOUT_SECONDS:.0f} s:\n{_tail(log)}")


async def call_probe(client: httpx.AsyncClient, probe: Probe) -> int:
    """Send one request; its wall time in ns. Anything but 200 is a harness failure."""
    started = time.perf_counter_ns()
    response = await client.post(probe.url, content=probe.body, headers=_JSON)
    elapsed = time.perf_counter_ns() - started
    if response.status_code != 200:
        raise BenchError(f"{probe.url}: {response.status_code} {response.text[:300]}")
    return elapsed


async def measure_latency(
    client: httpx.AsyncClient, direct: Probe, service: Probe, pairs: int, deadline_ns: int
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
    client: httpx.AsyncClient, probe: Probe, count: int, concurrency: int, deadline_ns: int
) -> tuple[int, int]:
    """`count` requests by `concurrency` workers (fewer if the deadline passes): (done, ns)."""
    left = count
    done = 0

    async def worker() -> None:
        nonlocal left, done
        while left > 0 and time.perf_counter_ns() < deadline_ns:
            left -= 1
            await call_probe(client, probe)
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
    client: httpx.AsyncClient,
    paths: Sequence[tuple[str, Probe, int]],
    params: Params,
    deadline_ns: int,
) -> list[ThroughputRow]:
    """Each (name, probe, server pid) in alternating rounds; totals per path."""
    per_round = max(1, params.throughput_requests // THROUGHPUT_ROUNDS)
    totals = {name: [0, 0, 0] for name, _, _ in paths}  # requests, ns, cpu ns
    cpu_known = True
    for round_ in range(THROUGHPUT_ROUNDS):
        ordered = paths if round_ % 2 == 0 else list(reversed(paths))
        for name, probe, pid in ordered:
            cpu_before = fetch_cpu_ns(pid)
            done, elapsed = await measure_burst(
                client, probe, per_round, params.concurrency, deadline_ns
            )
            cpu_after = fetch_cpu_ns(pid)
            if cpu_before is None or cpu_after is None:
                cpu_known = False
            else:
                totals[name][2] += cpu_after - cpu_before
            totals[name][0] += done
            totals[name][1] += elapsed
    return [
        ThroughputRow(name, req, ns, cpu if cpu_known else None)
        for name, (req, ns, cpu) in totals.items()
    ]


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


def write_prompts(folder: Path) -> None:
    """The retrieval-free copy of policy-qa 1.1.0, checked to no longer read `context`."""
    manifest = build_bench_manifest(yaml.safe_load(SOURCE_PROMPT.read_text()))
    (folder / "policy-qa-bench.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (resource,) = load_manifests(folder)
    if any("context" in names for names in referenced_variables(resource.spec.template).values()):
        raise BenchError(f"{SOURCE_PROMPT.name}: could not remove the context from the template")


def build_service_env(prompts_dir: Path, model_base_url: str) -> dict[str, str]:
    """The process environment without any of the service's settings, then the bench's."""
    names = set(list_variables())
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    return env | {
        "PROMPTS_DIR": str(prompts_dir),
        "CORPUS_DIR": "",
        "QDRANT_PATH": ":memory:",
        "MODEL_BASE_URL": model_base_url,
        "LOG_LEVEL": "WARNING",
    }


async def profile_in_process(
    prompts_dir: Path, model_base_url: str, body: bytes, requests: int, deadline_ns: int
) -> Profile:
    """Call the service app as ASGI under cProfile; own time per package and function."""
    from service.app import create_app  # noqa: PLC0415 - only the profile needs the app

    settings = Settings(
        prompts_dir=prompts_dir,
        corpus_dir=None,
        qdrant_path=":memory:",
        model_base_url=model_base_url,
        log_level="WARNING",
    )
    app = create_app(settings)

    async def one() -> None:
        sent: list[Message] = []
        delivered = asyncio.Event()
        finished = asyncio.Event()

        async def receive() -> Message:
            if not delivered.is_set():
                delivered.set()
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                finished.set()

        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/answers",
            "raw_path": b"/v1/answers",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"bench"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        if status != 200:
            raise BenchError(f"in-process /v1/answers: {status}")

    # Thread CPU time, not wall time: waiting on the GIL or the selector is not own time.
    profiler = cProfile.Profile(time.thread_time_ns, 1e-9)
    done = 0
    async with app.router.lifespan_context(app):
        for _ in range(20):
            await one()
        profiler.enable()
        try:
            while done < requests and time.perf_counter_ns() < deadline_ns:
                await one()
                done += 1
        finally:
            profiler.disable()
    return build_profile(pstats.Stats(profiler), max(1, done))


async def run(params: Params) -> Results:
    """Start both servers, measure, stop them."""
    started, t0 = datetime.now(UTC), time.perf_counter_ns()
    budget_ns = int(params.max_seconds * 1e9)
    bin_dir = Path(sys.executable).parent
    for tool in ("promptctl", "python"):
        if not (bin_dir / tool).exists():
            raise BenchError(f"{bin_dir / tool} not found: run with the project's venv python")
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
                    *("--port", str(model_port), "--latency-ms", f"{params.latency_ms:g}"),
                ],
                os.environ,
                stack.enter_context(model_log.open("wb")),
            )
        )
        service = stack.enter_context(
            run_process(
                [
                    *(str(bin_dir / "python"), "-m", "service"),
                    *("--host", "127.0.0.1", "--port", str(service_port), "--log-level", "warning"),
                ],
                build_service_env(prompts, f"{model_url}/v1"),
                stack.enter_context(service_log.open("wb")),
            )
        )
        limits = httpx.Limits(
            max_connections=2 * params.concurrency + 4,
            max_keepalive_connections=2 * params.concurrency + 4,
        )
        async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
            await wait_ready(client, f"{model_url}/v1/models", model, model_log)
            await wait_ready(client, f"{service_url}/readyz", service, service_log)
            direct = build_direct_probe(prompts, model_url)
            answer = {"prompt": "policy-qa", "question": QUESTION, "variables": VARIABLES}
            via_service = Probe(f"{service_url}/v1/answers", json.dumps(answer).encode())

            far = time.perf_counter_ns() + budget_ns
            await measure_latency(client, direct, via_service, params.warmup, far)
            for probe in (direct, via_service):
                await measure_burst(client, probe, params.concurrency * 4, params.concurrency, far)
            end_latency = time.perf_counter_ns() + budget_ns // 2
            cpu_before = fetch_cpu_ns(service.pid)
            direct_ns, service_ns = await measure_latency(
                client, direct, via_service, params.requests, end_latency
            )
            cpu_after = fetch_cpu_ns(service.pid)
            if len(direct_ns) < 2:
                raise BenchError("fewer than 2 latency pairs measured: raise --max-seconds")
            end_throughput = time.perf_counter_ns() + budget_ns * 35 // 100
            throughput = await measure_throughput(
                client,
                [("direct", direct, model.pid), ("service", via_service, service.pid)],
                params,
                end_throughput,
            )
            if any(row.requests == 0 for row in throughput):
                raise BenchError("no throughput measured: raise --max-seconds")
        profile = None
        if params.profile_requests > 0:
            profile = await profile_in_process(
                prompts,
                f"{model_url}/v1",
                via_service.body,
                params.profile_requests,
                t0 + budget_ns,
            )
    return Results(
        started=started,
        params=params,
        pairs=len(direct_ns),
        latency=build_latency_rows(direct_ns, service_ns),
        paired_median_added_ms=build_paired_median(direct_ns, service_ns),
        service_cpu_ms_at_c1=(
            None
            if cpu_before is None or cpu_after is None
            else (cpu_after - cpu_before) / 1e6 / len(service_ns)
        ),
        throughput=throughput,
        profile=profile,
        seconds=(time.perf_counter_ns() - t0) / 1e9,
    )


def _machine() -> dict[str, str]:
    return {
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


#: Each command-line option: the Params field it sets, its parser and its help.
_OPTIONS: list[tuple[str, Callable[[str], Any], str]] = [
    ("requests", _positive(int), "latency pairs at concurrency 1"),
    ("throughput_requests", _positive(int), "requests per path at saturation (4 x requests)"),
    ("concurrency", _positive(int), "workers at saturation"),
    ("latency_ms", _non_negative(float), "fake model latency, ms"),
    ("warmup", _non_negative(int), "warm-up pairs"),
    ("profile_requests", _non_negative(int), "in-process cProfile requests; 0 skips"),
    ("max_seconds", _positive(float), "time cap of the measured phases"),
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
        parser.add_argument(flag, type=kind, help=f"{text} (default {getattr(defaults, field)})")
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
    report = render_report(results, _machine())
    params.output.parent.mkdir(parents=True, exist_ok=True)
    params.output.write_text(report, encoding="utf-8")
    sys.stdout.write(report)
    sys.stdout.write(f"\nwritten to {params.output}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
