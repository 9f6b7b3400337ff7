"""`make test` tells the truth about what ran: a pytest failure names the chart tests it skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent if sys.prefix != sys.base_prefix else None


def _make_test(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """`make test` on a one-test suite, with the venv and system packages taken as ready."""
    if VENV is None:
        pytest.fail("run the tests from the project's virtualenv (make test does)")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_one.py").write_text(f"def test_one():\n    assert {body}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "PROMPT_ROLLOUTS_"))}
    args = f"-q -p no:cacheprovider -c {tmp_path}/pytest.ini {tmp_path}/test_one.py"
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            f"--old-file={Path(sys.executable).parent}/.installed",  # never reinstall the venv
            "--old-file=system-deps",
            "test",
            f"VENV={VENV}",
            f"BIN={Path(sys.executable).parent}",
            "HELM_PYTHON=",  # the chart step then only prints that it was skipped
            f"PYTEST_ARGS={args}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_pytest_failure_says_the_chart_tests_did_not_run(tmp_path: Path) -> None:
    result = _make_test(tmp_path, "False")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "1 failed" in output
    said = "FAILED: pytest exited 1; the chart tests (tests/chart, make test-chart) did NOT run"
    assert said in result.stdout.splitlines(), output
    assert "SKIPPED: chart tests" not in output  # the recipe stopped at pytest


def test_a_passing_suite_goes_on_to_the_chart_step(tmp_path: Path) -> None:
    result = _make_test(tmp_path, "True")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 passed" in output
    assert not [line for line in result.stdout.splitlines() if line.startswith("FAILED")], output
    assert "SKIPPED: chart tests (tests/chart)" in output
