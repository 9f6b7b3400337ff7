"""Suite-wide rules: in CI (PROMPT_ROLLOUTS_FORBID_SKIPS=1) a skipped test fails the run."""

from __future__ import annotations

import os

import pytest

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember every skipped test."""
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Turn skips into a failure when skips are forbidden."""
    if _skipped and os.environ.get("PROMPT_ROLLOUTS_FORBID_SKIPS") == "1":
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"FAILED: {len(_skipped)} test(s) skipped while skips are forbidden: "
                + ", ".join(_skipped),
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
