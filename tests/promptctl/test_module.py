"""`python -m promptctl.main …` is the CLI too (the docs and helpers run it that way)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promptctl.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_module_runs_the_cli() -> None:
    result = _run("lint", "prompts/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PromptVersion(s)" in result.stdout  # it did run, not exit 0 doing nothing


def test_an_unknown_command_fails_through_the_module() -> None:
    result = _run("no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr
