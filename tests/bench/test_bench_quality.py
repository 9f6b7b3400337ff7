"""``python -m bench.quality`` runs end to end with a few rollouts per row and writes its tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import quality


def test_a_tiny_run_writes_every_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "benchmarks-quality.md"

    assert quality.main(["--runs", "5", "--seed", "1", "--output", str(output)]) == 0

    report = output.read_text(encoding="utf-8")
    assert capsys.readouterr().out == report
    for heading in (
        "## Detection time vs effect size",
        "## False rollbacks vs sample size",
        "## Feedback and judge scores",
    ):
        assert heading in report
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    detection = [r for r in rows if r.startswith(("| 10 % (default) |", "| 20 % |"))]
    assert len(detection) == 2 * 2 * len(quality.EFFECTS)
    # a +30 pts regression is always caught, even in a tiny run
    strongest = [r for r in detection if "| +30 pts |" in r and r.startswith("| 20 % | +0 |")]
    assert [cell.strip() for cell in strongest[0].split("|")][4] == "100.0"


def test_runs_must_be_positive() -> None:
    with pytest.raises(SystemExit):
        quality.main(["--runs", "0", "--output", "-"])
