"""docs/benchmarks.md's caveats (bench.caveats): the client check, the machine's load and
bench/tried.md, rendered into the report (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.caveats import (
    TRIED_FILE,
    build_ceiling,
    fetch_tried,
    render_client_check,
    render_tried,
)
from bench.report import render_report
from bench.results import LatencyRow, Params, Results, Scenario, ThroughputRow

MACHINE = {"nproc": "2", "python": "3.11", "platform": "Linux x86_64"}


def row(path: str, concurrency: int, rps: float, cpu_ms: float, client_ms: float) -> ThroughputRow:
    requests = 1000
    return ThroughputRow(
        path,
        requests,
        int(requests / rps * 1e9),
        int(cpu_ms * 1e6 * requests),
        concurrency,
        50.0,
        90.0,
        client_cpu_ns=int(client_ms * 1e6 * requests),
    )


def scenario(direct_rps: float = 1000.0) -> Scenario:
    return Scenario(
        latency_ms=50.0,
        pairs=10,
        latency=[LatencyRow(f"p{q}", 50.0, 51.0) for q in (50, 90, 99)],
        paired_median_added_ms=1.0,
        service_cpu_ms_at_c1=0.9,
        throughput=[
            row("direct", 64, direct_rps, 0.8, 0.4),
            row("service", 64, 600.0, 1.5, 0.5),
        ],
    )


def results(load: tuple[str | None, str | None] = ("0.50 0.40 0.30", "1.50 0.60 0.35")) -> Results:
    return Results(
        started=datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
        params=Params(concurrency=(64,), latency_ms=(50.0,)),
        scenarios=[scenario()],
        profiles=[],
        seconds=10.0,
        load_start=load[0],
        load_end=load[1],
    )


def test_the_ceiling_is_the_smaller_of_the_wait_and_the_cpu_bound() -> None:
    # 64 connections x 1000 / (50 + 0.8) ms = 1,260 req/s; one core at 0.8 ms = 1,250.
    assert build_ceiling(row("direct", 64, 1000, 0.8, 0.4), 50.0) == pytest.approx(1250.0)
    # 16 connections: the wait bounds it, 16 x 1000 / 50.8.
    assert build_ceiling(row("direct", 16, 300, 0.8, 0.4), 50.0) == pytest.approx(314.96, 0.01)
    unknown = ThroughputRow("direct", 10, 10**9, None, 16)
    assert build_ceiling(unknown, 50.0) is None


def test_the_client_check_shows_the_share_of_the_ceiling_and_the_client_cpu() -> None:
    text = "\n".join(render_client_check(scenario(direct_rps=1000.0)))
    # 1000 of 1250 req/s = 80 %; client 0.40 ms direct, 0.50 ms service; busy (0.8+0.4) x 1.
    assert "| 64 | 1000.0 | 0.80 | 1250 | 80 % | 0.40 / 0.50 | 1.20 |" in text


def test_the_report_carries_the_load_the_tried_file_and_the_before_profile_link() -> None:
    tried = "# What was tried\n\n<!-- note to the lead -->\n## Client\n\n- aiohttp: kept.\n"
    report = render_report(results(), MACHINE, tried=tried)

    assert "0.50 0.40 0.30 at the start, 1.50 0.60 0.35 at the end" in report
    assert "`python -m bench.overhead --help`" in report
    assert "`aiohttp.ClientSession`" in report
    assert "`MAX_INFLIGHT=100`" in report
    assert "### What was tried\n\nKept by hand in `bench/tried.md`" in report
    assert "#### Client\n\n- aiohttp: kept.\n" in report
    assert "note to the lead" not in report
    assert "# What was tried\n" not in report.replace("### What was tried\n", "")
    assert "goal(s) missed" in report
    assert "[benchmarks-before.md](benchmarks-before.md)" in report
    assert "| 64 | 1000.0 | 0.80 | 1250 | 80 % |" in report


def test_a_missing_or_empty_tried_file_is_stated_not_left_out() -> None:
    missing = render_report(results(load=(None, None)), MACHINE, tried=None)
    assert "### What was tried\n\n`bench/tried.md` was not found" in missing
    assert "Machine load: not known" in missing
    assert render_tried("  \n")[2] == "`bench/tried.md` is empty: nothing recorded as tried."


def test_headings_in_code_fences_stay_and_an_open_fence_is_closed() -> None:
    lines = render_tried("## Kept\n```sh\n# a shell comment\n")
    assert lines[4:] == ["#### Kept", "```sh", "# a shell comment", "```", ""]


def test_the_shipped_tried_file_is_read(tmp_path: Path) -> None:
    shipped = fetch_tried(TRIED_FILE)
    assert shipped is not None
    assert "#### The load client and the fake model" in "\n".join(render_tried(shipped))
    assert fetch_tried(tmp_path / "absent.md") is None


def test_the_summary_has_the_cpu_ratio_against_the_fake_model() -> None:
    report = render_report(results(), MACHINE, tried="")
    # req/s 600 / 1000 = 0.60; CPU per request 1.5 ms (service) / 0.8 ms (fake model).
    assert "| req/s ratio c=64 | CPU ratio c=64 |" in report
    assert "| 50 ms | 1.00 | 1.00 | 0.60 | 1.88 |" in report
    unknown = Scenario(
        latency_ms=50.0,
        pairs=10,
        latency=[LatencyRow(f"p{q}", 50.0, 51.0) for q in (50, 90, 99)],
        paired_median_added_ms=1.0,
        service_cpu_ms_at_c1=None,
        throughput=[ThroughputRow("direct", 10, 10**9, None, 64)],
    )
    bare = render_report(replace(results(), scenarios=[unknown]), MACHINE, tried="")
    assert "| 50 ms | 1.00 | 1.00 | n/a | n/a |" in bare
