"""``python -m bench.overhead`` runs end to end with tiny parameters; no speed is asserted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import overhead

_NUMBER = r"(-?\d+(?:\.\d+)?)"


def _row(report: str, first_cell: str) -> list[str]:
    """The cells after the first of the table row starting with `first_cell`."""
    rows = [line for line in report.splitlines() if line.startswith(f"| {first_cell} |")]
    assert rows, f"no table row for {first_cell!r}"
    return [cell.strip() for cell in rows[0].strip("|").split("|")][1:]


@pytest.mark.integration
def test_a_tiny_run_writes_a_report_with_every_row(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"

    code = overhead.main(
        [
            *("--requests", "20", "--throughput-requests", "40", "--concurrency", "2"),
            *("--latency-ms", "1", "--warmup", "3", "--profile-requests", "5"),
            *("--max-seconds", "30", "--output", str(output)),
        ]
    )

    assert code == 0
    report = output.read_text(encoding="utf-8")
    for percentile in ("p50", "p90", "p99"):
        direct, service, _added, ratio = _row(report, percentile)
        assert float(direct) > 0
        assert float(service) > 0
        assert float(ratio) > 0
    for path in ("direct", "service"):
        requests, rps, _cpu = _row(report, path)
        assert int(requests) > 0
        assert float(rps) > 0
    assert re.search(rf"\| p50 ≤ 1 ms \| {_NUMBER} \| (yes|no) \|", report)
    assert "Target met." in report or "Target not met." in report
    assert "### Hotspots" in report
