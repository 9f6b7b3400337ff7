"""The two servers a run measures: the fake model and the service, on 127.0.0.1.

The service serves a retrieval-free copy of policy-qa 1.1.0 (``write_prompts``), with an
environment cleared of the caller's service settings (``build_service_env``). Processes
are started by ``run_process`` and always stopped and reaped by it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import aiohttp
import yaml

from api.v1alpha1.manifests import load_manifests
from bench.results import REPO, BenchError
from prompting.rendering import referenced_variables
from service.settings import list_variables

__all__ = [
    "QUESTION",
    "SOURCE_PROMPT",
    "VARIABLES",
    "build_bench_manifest",
    "build_max_inflight",
    "build_service_env",
    "fetch_cpu_ns",
    "fetch_free_port",
    "fetch_loadavg",
    "fetch_rss_mb",
    "run_process",
    "wait_ready",
    "write_prompts",
]

SOURCE_PROMPT = REPO / "prompts" / "policy-qa-1.1.0.yaml"
QUESTION = "Can I get a refund for a digital item I bought last week?"
VARIABLES: dict[str, Any] = {"tone": "formal", "max_length": 80}
STARTUP_TIMEOUT_SECONDS = 60.0


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


def build_max_inflight(concurrency: int) -> int:
    """``MAX_INFLIGHT`` for the bench's service: the default (100), or `concurrency` if more.

    Each connection has at most one request in flight (HTTP/1.1, no pipelining) and the
    service frees a slot when the response's last byte is sent, so the default sheds
    nothing up to 100 connections; only a larger concurrency needs a larger limit.
    """
    return max(100, concurrency)


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


def fetch_loadavg() -> str | None:
    """The machine's load averages over 1, 5 and 15 minutes (Linux /proc), or None."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return None


def fetch_rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB (Linux /proc), or None where unavailable."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


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
    client: aiohttp.ClientSession, url: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    """Poll `url` until it answers 200, the process dies, or the start-up timeout passes."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{url}: server exited with {process.returncode}:\n{_tail(log)}")
        try:
            async with client.get(url, timeout=aiohttp.ClientTimeout(total=2.0)) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.1)
    raise BenchError(f"{url}: not ready after {STARTUP_TIMEOUT_SECONDS:.0f} s:\n{_tail(log)}")
