"""The service as shipped, with the embedded model: cold start to ready, first answer, RSS.

``python -m service`` with default settings (the shipped prompts and corpora, indexed at
start-up into the embedded store in memory, the bundled MiniLM model, the extractive
answerer: no ``MODEL_BASE_URL``) on a free 127.0.0.1 port. Measured: seconds from spawn
to the first 200 on ``/readyz`` (start-up indexing included), the first answer's latency
(a retrieval prompt: question embedding, exact search, extractive answer), and ``VmRSS``
after it. Raises :class:`bench.results.BenchError` if the service does not start or answer.
"""

from __future__ import annotations

import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.results import REPO, BenchError
from bench.servers import (
    QUESTION,
    build_service_env,
    fetch_free_port,
    fetch_rss_mb,
    run_process,
    wait_ready,
)

__all__ = ["EmbeddedRun", "measure_embedded", "render_embedded"]


@dataclass(frozen=True)
class EmbeddedRun:
    """One start of the shipped service with the embedded model."""

    cold_start_s: float
    first_answer_ms: float
    rss_mb: float | None
    rss_ready_mb: float | None


async def measure_embedded() -> EmbeddedRun:
    """Start the shipped service, time it to ready and one answer, read its RSS."""
    port = fetch_free_port()
    url = f"http://127.0.0.1:{port}"
    env = build_service_env(REPO / "prompts", "") | {
        "CORPORA": "policies=data/policies,faq=data/faq",
    }
    for unset in ("MODEL_BASE_URL", "CORPUS_DIR"):
        env.pop(unset, None)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "service.log"
        argv = [sys.executable, "-m", "service", "--port", str(port), "--log-level", "warning"]
        timeout = aiohttp.ClientTimeout(total=60.0)
        async with aiohttp.ClientSession(timeout=timeout) as client:
            spawned = time.perf_counter()
            service = stack.enter_context(
                run_process(argv, env, stack.enter_context(log.open("wb")))
            )
            await wait_ready(client, f"{url}/readyz", service, log)
            cold = time.perf_counter() - spawned
            rss_ready = fetch_rss_mb(service.pid)
            body = {"prompt": "policy-qa", "question": QUESTION, "variables": {"tone": "formal"}}
            t0 = time.perf_counter()
            async with client.post(f"{url}/v1/answers", json=body) as response:
                text, status = await response.text(), response.status
            first = (time.perf_counter() - t0) * 1000
            if status != 200:
                raise BenchError(f"first answer: {status} {text[:300]}")
            return EmbeddedRun(cold, first, fetch_rss_mb(service.pid), rss_ready)


def render_embedded(run: EmbeddedRun) -> list[str]:
    """The report's section on the shipped service with the embedded model (pure)."""
    rss = "n/a" if run.rss_mb is None else f"{run.rss_mb:.0f} MB"
    ready = "n/a" if run.rss_ready_mb is None else f"{run.rss_ready_mb:.0f} MB"
    return [
        "### The shipped service with the embedded model",
        "",
        "`python -m service` with default settings: the shipped prompts, both corpora",
        "(`data/policies`, `data/faq`) indexed at start-up into the embedded store (in memory),",
        "the bundled MiniLM model, the extractive answerer (no `MODEL_BASE_URL`).",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| cold start to ready (start-up indexing included) | {run.cold_start_s:.2f} s |",
        f"| RSS when ready | {ready} |",
        f"| first answer (policy-qa, retrieval) | {run.first_answer_ms:.1f} ms |",
        f"| RSS after the first answer | {rss} |",
        "",
    ]
