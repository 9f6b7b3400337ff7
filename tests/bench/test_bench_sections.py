"""The retrieval and embedded-model sections of docs/benchmarks.md, and their goal rows (pure)."""

from __future__ import annotations

from bench.embedded import FOLDER, EmbeddedRun, render_embedded
from bench.report import _extra_goal_rows
from bench.retrieval import RetrievalRow, build_questions, render_retrieval

NAN = float("nan")


def row(passages: int, retrieve_ms: float, store_ms: float = 60.0) -> RetrievalRow:
    return RetrievalRow(passages, store_ms, 2.0, 50.0, 40.0, 110.0, retrieve_ms, 0.5, 1.0, 40)


def test_goal_rows_judge_10k_retrieval_rss_and_cold_start() -> None:
    rows = _extra_goal_rows(
        [row(10_000, 9.5), row(100_000, 30.0, NAN)], [EmbeddedRun(2.5, 40.0, 280.0, 270.0)]
    )
    assert rows[0].endswith("| ≤ 10 ms p50 | 9.50 ms (old path 110.00 ms) | yes |")
    assert "at 100,000 passages | a documented figure | 30.00 ms | yes |" in rows[1]
    assert rows[2].endswith("| ≤ 300 MB | 280 MB | yes |")
    assert rows[3].endswith("| ≤ 2 s | 2.50 s | no |")
    missed = _extra_goal_rows(
        [row(10_000, 10.01)],
        [EmbeddedRun(1.0, 1.0, 301.0, None, FOLDER), EmbeddedRun(3.0, 1.0, 200.0, None)],
    )
    assert missed[0].endswith("| no |")
    assert missed[1].endswith("| 301 MB | no |")
    assert missed[2].endswith("| 1.00 s | yes |")
    assert "folder store (default)" in missed[1] and "folder store (default)" in missed[2]
    assert "`QDRANT_PATH=:memory:`" in missed[3] and missed[3].endswith("| 200 MB | yes |")
    assert missed[4].endswith("| 3.00 s | no |")
    assert _extra_goal_rows([], []) == [
        "| retrieval (embed + top-3) at 10,000 passages | ≤ 10 ms p50 | not run | - |"
    ]


def test_sections_show_unmeasured_cells_and_ratios() -> None:
    text = "\n".join(render_retrieval([row(10_000, 20.0), row(100_000, 30.0, NAN)]))
    assert "| 10,000 | 60.00 ms | 2.000 ms | 30.0x |" in text
    assert "| 110.00 ms | 20.00 ms | 5.5x |" in text
    assert "| 100,000 | not measured | 2.000 ms | n/a |" in text
    shown = "\n".join(
        render_embedded(
            [EmbeddedRun(1.5, 9.0, 280.0, 270.0, FOLDER), EmbeddedRun(3.0, 12.5, None, 250.0)]
        )
    )
    assert "| measure | folder store (default) | `QDRANT_PATH=:memory:` |" in shown
    assert "| RSS after the first answer | 280 MB | n/a |" in shown
    assert "| RSS when ready | 270 MB | 250 MB |" in shown
    assert "| cold start to ready (start-up indexing included) | 1.50 s | 3.00 s |" in shown
    questions = build_questions(20)
    assert len(set(questions)) == 20
