"""bench.retrieval's tables: the one-thread column and the concurrent-embedding table (pure)."""

from __future__ import annotations

from typing import Any

from bench.retrieval import CONCURRENT, RetrievalRow, render_retrieval


def row(passages: int, **extra: Any) -> RetrievalRow:
    return RetrievalRow(passages, 15.0, 1.9, 10.2, 11.0, 32.0, 12.9, 2.2, 1.1, 40, **extra)


def test_the_one_thread_column_sits_between_defaults_and_tuned() -> None:
    text = "\n".join(render_retrieval([row(10_000, embed_one_thread_ms=15.2)]))
    assert "| embed, ORT defaults | embed, 1 thread | embed, tuned |" in text
    assert "| 10.20 ms | 15.20 ms | 11.00 ms | 32.00 ms | 12.90 ms |" in text
    assert "| 10.20 ms | not measured | 11.00 ms |" in "\n".join(render_retrieval([row(10_000)]))


def test_the_concurrent_table_comes_from_the_first_row_that_measured_it() -> None:
    measured = (("1 thread", 122.0, 14.96), ("tuned", 123.1, 15.46))
    text = "\n".join(render_retrieval([row(1_000), row(10_000, concurrent=measured)]))
    assert f"{CONCURRENT} questions in flight" in text
    assert "(10,000-passage run)" in text
    assert "| 1 thread | 122.0 | 14.96 ms |" in text
    assert "| tuned | 123.1 | 15.46 ms |" in text
    assert "questions in flight" not in "\n".join(render_retrieval([row(10_000)]))
