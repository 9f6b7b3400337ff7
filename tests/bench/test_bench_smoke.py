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
            *("--requests", "20", "--throughput-requests", "40", "--concurrency", "2,3"),
            *("--latency-ms", "1,2", "--warmup", "3", "--profile-requests", "5"),
            *("--max-seconds", "30", "--output", str(output)),
            *("--retrieval-passages", "300", "--embedded", "no"),
        ]
    )

    assert code == 0
    report = output.read_text(encoding="utf-8")
    for percentile in ("p50", "p90", "p99"):
        direct, service, _added, ratio = _row(report, percentile)
        assert float(direct) > 0
        assert float(service) > 0
        assert float(ratio) > 0
    for upstream in ("1", "2"):
        assert f"### Upstream {upstream} ms" in report
        # added p50, p99, the req/s ratio and the CPU ratio at each concurrency; a CPU ratio
        # is n/a when the fake model's few requests took under one clock tick of CPU.
        cpu = rf"(?:{_NUMBER}|n/a)"
        assert re.search(
            rf"^\| {upstream} ms \| {_NUMBER} \| {_NUMBER} \| {_NUMBER} \| {_NUMBER} "
            rf"\| {cpu} \| {cpu} \|$",
            report,
            re.MULTILINE,
        ), "summary row with both concurrencies"
    for concurrency in ("2", "3"):
        for path in ("direct", "service"):
            requests, rps, p50, p99, _cpu, _ratio = _throughput(report, concurrency, path)
            assert int(requests) > 0
            assert float(rps) > 0
            assert 0 < float(p50) <= float(p99)
    # The goals are judged on the slowest upstream measured (2 ms here).
    assert re.search(
        rf"\| added latency p50, concurrency 1 \| ≤ 1 ms \| {_NUMBER} ms \| (yes|no) \|", report
    )
    assert re.search(
        r"\| throughput, 3 connections \| ≥ 670 req/s \| \d+ req/s \| (yes|no) \|", report
    )
    assert re.search(
        r"\| cold start to ready \(bench service\) \| ≤ 2 s \| [\d.]+ s \| (yes|no) \|", report
    )
    # Retrieval: both paths measured at 300 passages, in one row, and its goal judged.
    (row,) = [line for line in report.splitlines() if line.startswith("| 300 |")]
    assert row.count(" ms ") >= 7
    assert "not measured" not in row
    assert "| retrieval (embed + top-3) at 300 passages | a documented figure |" in report
    assert "### The shipped service with the embedded model" not in report  # --embedded no
    assert "python -m bench.overhead --requests 20" in report
    assert "### Hotspots (cProfile, service in process, concurrency 1," in report
    assert "### Hotspots (cProfile, service in process, concurrency 3," in report
    # What a reader needs to judge the figures: the client's own CPU against the fake model's
    # ceiling, the machine's load, and what was tried (bench/tried.md as shipped).
    for concurrency in ("2", "3"):
        assert re.search(
            rf"^\| {concurrency} \| [\d.]+ \| [\d.]+ \| \d+ \| \d+ % "
            r"\| [\d.]+ / [\d.]+ \| [\d.]+ \|$",
            report,
            re.MULTILINE,
        ), f"load client check row at concurrency {concurrency}"
    assert re.search(r"Machine load \(`/proc/loadavg`, 1/5/15 min\): [\d. ]+ at the start", report)
    assert "### What was tried\n\nKept by hand in `bench/tried.md`" in report


def _throughput(report: str, concurrency: str, path: str) -> list[str]:
    """requests, req/s, p50, p99, CPU, ratio of one throughput row."""
    rows = [line for line in report.splitlines() if line.startswith(f"| {concurrency} | {path} |")]
    assert rows, f"no throughput row for {concurrency} {path}"
    return [cell.strip() for cell in rows[0].strip("|").split("|")][2:]
