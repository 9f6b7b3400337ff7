"""ONNX Runtime session options for the bundled MiniLM model in a server (pure builders).

Why a query costs what it costs (measured on the project's 2-core AVX2 machines, issue 15,
docs/benchmarks-performance.md "Query embedding"): the bundled model is int8 *weight-only*
(``Cast`` + ``Mul`` by a per-column scale before each ``MatMul``). ONNX Runtime's constant
folding turns those weights into float32 when the session loads, so every query runs
float32 GEMMs: ~340 MFLOP for a 16-token question, ~0.75 ms per token plus ~3 ms fixed
on one core (13-14 ms of CPU for 16 tokens). FACTS.md's ~4 ms is what a 3-5 token query
costs here. Keeping the weights int8 does not pay on this CPU (no AVX-512/VNNI):
``DynamicQuantizeMatMul`` was 10 % faster with cosines down to 0.982 against today's
vectors, ``MatMulNBits`` (8-bit) 2.6-3.7x slower. So the lever is using both cores for one
query: :func:`decide_threads`.
"""

from __future__ import annotations

import os

import onnxruntime as ort

__all__ = ["MAX_QUERY_THREADS", "build_session_options", "decide_threads"]

#: Threads one inference call may use at most (one query's GEMMs stop scaling past that,
#: and the other cores stay free for concurrent requests).
MAX_QUERY_THREADS = 2


def decide_threads(cpus: int | None = None) -> int:
    """Intra-op threads for one call: the usable CPUs, 1 to :data:`MAX_QUERY_THREADS` (pure
    when ``cpus`` is given; otherwise the process's CPU affinity)."""
    if cpus is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cpus = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return max(1, min(MAX_QUERY_THREADS, cpus))


def build_session_options(threads: int | None = None) -> ort.SessionOptions:
    """ONNX Runtime options for a server: ``threads`` per call (default
    :func:`decide_threads`: 2 on a 2-core machine), threads that sleep instead of spinning,
    no memory arena, all graph optimisations.

    Measured on one 2-core machine, the same questions alternated in one process
    (docs/benchmarks-performance.md "Query embedding"): a 16-token question costs
    13-14 ms of CPU whatever the options. Two intra-op threads that do not spin cut a lone
    query's wall time ~1.6x (idle: 14.1 → ~8.6 ms) for +0-10 % CPU, and did not lose
    throughput under concurrent load (4 callers on 2 busy cores: 57-69 against 25-42
    queries/s with one thread). Spinning threads (ONNX Runtime's default) are what made
    two threads lose under load (17-22 against 26-38 queries/s): a spinning worker burns
    the core the other requests need. The CPU arena made no measurable difference per
    query (±1 %) and keeps the largest batch's peak (781 MB of RSS after indexing 96 long
    passages against 361 MB without it), so it stays off. Graph levels basic, extended and
    all were within 2-5 % of each other (basic slightly lower CPU) and the fusions of
    ``onnxruntime.transformers`` (BiasGelu, SkipLayerNorm) bought nothing measurable.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = decide_threads() if threads is None else max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options
