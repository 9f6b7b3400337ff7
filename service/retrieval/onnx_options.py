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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

    Measured on one 2-core machine, settings alternated (docs/benchmarks-performance.md,
    "Query embedding"): a 16-token question costs 15-17 ms of CPU whatever the options.
    Two sleeping threads: 9.4-13.6 against 14.5-17.0 ms with one thread on a quiet machine
    (+3-9 % CPU), faster or equal in 7 of 8 loaded runs, about the same throughput with 4
    questions in flight (119-125 against 122-126 q/s), start-up indexing 1.4-1.7x faster.
    Spinning threads (ONNX Runtime's default) reach ~10 ms quiet but were the slowest of
    all under load (a spinning worker holds the core other requests need). Spinning during
    a run only (``session.force_spinning_stop``) also gives ~10 ms quiet, for +15-27 % CPU
    per question (that much less throughput once the cores are saturated): not used.
    The CPU arena made no measurable difference per question (±1 %) and keeps the largest
    batch's peak (781 MB of RSS after indexing 96 long passages against 361 MB without
    it). Graph levels basic, extended and all were within 2-5 % of each other; the
    ``onnxruntime.transformers`` fusions bought nothing measurable.
    """
    import onnxruntime as ort  # noqa: PLC0415 - imported when the model loads

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
