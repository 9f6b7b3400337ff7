"""ONNX Runtime options for the bundled model: threads per call, no spinning, no arena; and
vectors that do not depend on how many threads computed them (real model)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from service.retrieval.embeddings import OnnxMiniLMEmbedder, build_session_options
from service.retrieval.onnx_options import MAX_QUERY_THREADS, decide_threads

TEXTS = [
    "x",
    "How long does a refund take for order 1042 paid by card?",
    "Can I get my money back for an e-book?",
    "Wie lange dauert die Lieferung nach Österreich?",
    "Refunds for digital goods are issued within 14 days of the request. " * 4,
    "",
]


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [(0, 1), (1, 1), (2, 2), (3, 2), (64, 2)],
    ids=["none-reported", "one", "two", "three", "many"],
)
def test_decide_threads_uses_the_cores_up_to_two(cpus: int, expected: int) -> None:
    assert decide_threads(cpus) == expected


def test_decide_threads_reads_the_process_affinity() -> None:
    usable = len(os.sched_getaffinity(0))
    assert decide_threads() == max(1, min(MAX_QUERY_THREADS, usable))


@pytest.mark.parametrize("threads", [None, 1, 2, 0])
def test_session_options_never_spin_and_keep_no_arena(threads: int | None) -> None:
    options = build_session_options(threads)
    expected = decide_threads() if threads is None else max(1, threads)
    assert options.intra_op_num_threads == expected
    assert options.inter_op_num_threads == 1
    assert options.enable_cpu_mem_arena is False
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"


def test_the_loaded_session_runs_with_the_embedders_threads(minilm: OnnxMiniLMEmbedder) -> None:
    assert minilm.threads == decide_threads()
    _, session = minilm._session()
    assert session.get_session_options().intra_op_num_threads == minilm.threads
    assert OnnxMiniLMEmbedder(threads=0).threads == 1


@pytest.mark.asyncio
async def test_vectors_do_not_depend_on_the_thread_count() -> None:
    """Two threads (the default on 2 cores) give the one-thread setting's vectors, alone
    and in a batch: the speed-up changes nothing a stored collection depends on."""
    one = OnnxMiniLMEmbedder(threads=1)
    two = OnnxMiniLMEmbedder(threads=2)
    reference = np.array(await one.embed(TEXTS))
    batch = np.array(await two.embed(TEXTS))
    singles = np.array([(await two.embed([t]))[0] for t in TEXTS])
    for got in (batch, singles):
        cosines = np.sum(got * reference, axis=1)
        assert np.all(1.0 - cosines < 1e-5), cosines
