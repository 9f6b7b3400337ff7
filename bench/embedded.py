"""The service as shipped, with the embedded model: cold start to ready, first answer, RSS.

``python -m service`` with default settings (the shipped prompts and corpora, indexed at
start-up, the bundled MiniLM model, the extractive answerer: no ``MODEL_BASE_URL``) on a
free 127.0.0.1 port, once per vector store: a fresh folder (the default ``QDRANT_PATH``
kind, qdrant-client's local mode, as ``make run`` runs it) and ``:memory:`` (the exact
in-memory store). Measured: seconds from spawn
to the first 200 on ``/readyz`` (start-up indexing included), the first answer's latency
(a retrieval prompt: question embedding, exact search, extractive answer), and ``VmRSS``
after it. Raises :class:`bench.results.BenchError` if the service does not start or answer.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
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

__all__ = ["FOLDER", "EmbeddedRun", "measure_embedded", "render_embedded"]


@dataclass(frozen=True)
class EmbeddedRun:
    """One start of the shipped service with the embedded model."""

    cold_start_s: float
    first_answer_ms: float
    rss_mb: float | None
    rss_ready_mb: float | None
    #: ``QDRANT_PATH`` as run: ``:memory:``, or :data:`FOLDER` for a fresh folder.
    store: str = ":memory:"


#: ``measure_embedded``'s store for a fresh folder (the default kind: ``var/qdrant``).
FOLDER = "folder"


async def measure_embedded(store: str = FOLDER) -> EmbeddedRun:
    """Start the shipped service on `store`, time it to ready and one answer, read its RSS."""
    port = fetch_free_port()
    url = f"http://127.0.0.1:{port}"
    env = build_service_env(REPO / "prompts", "") | {
        "CORPORA": "policies=data/policies,faq=data/faq",
    }
    for unset in ("MODEL_BASE_URL", "CORPUS_DIR"):
        env.pop(unset, None)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        env["QDRANT_PATH"] = str(Path(tmp) / "qdrant") if store == FOLDER else store
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
            return EmbeddedRun(cold, first, fetch_rss_mb(service.pid), rss_ready, store)


def describe_store(store: str) -> str:
    """How the report names a run's store (pure)."""
    return "folder store (default)" if store == FOLDER else f"`QDRANT_PATH={store}`"


def render_embedded(runs: Sequence[EmbeddedRun]) -> list[str]:
    """The report's section on the shipped service with the embedded model (pure)."""

    def mb(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0f} MB"

    cells = {
        "cold start to ready (start-up indexing included)": [
            f"{r.cold_start_s:.2f} s" for r in runs
        ],
        "RSS when ready": [mb(r.rss_ready_mb) for r in runs],
        "first answer (policy-qa, retrieval)": [f"{r.first_answer_ms:.1f} ms" for r in runs],
        "RSS after the first answer": [mb(r.rss_mb) for r in runs],
    }
    return [
        "### The shipped service with the embedded model",
        "",
        "`python -m service` with default settings: the shipped prompts, both corpora",
        "(`data/policies`, `data/faq`) indexed at start-up, the bundled MiniLM model, the",
        "extractive answerer (no `MODEL_BASE_URL`). Once per vector store: a fresh folder",
        "(the default `QDRANT_PATH=var/qdrant` kind, qdrant-client's local mode: what `make run`",
        "starts) and `QDRANT_PATH=:memory:` (the exact in-memory store; no qdrant-client).",
        "",
        "| measure | " + " | ".join(describe_store(r.store) for r in runs) + " |",
        "| --- |" + " --- |" * len(runs),
        *(f"| {name} | " + " | ".join(values) + " |" for name, values in cells.items()),
        "",
    ]
