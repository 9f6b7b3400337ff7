"""``promptctl rehearse``: what it says, and its exit code, before it starts anything."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promptctl.main import app

runner = CliRunner(env={"COLUMNS": "240", "NO_COLOR": "1"})
HEALTHY = Path(__file__).resolve().parents[2] / "examples" / "rehearsals" / "healthy.yaml"


def test_a_bad_scenario_is_exit_2_naming_the_field(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("manifests: [a.yaml]\ntraffic: {rps: -1, duration: 1m, questions: [q]}\n")

    result = runner.invoke(app, ["rehearse", str(scenario)])

    assert result.exit_code == 2
    assert f"promptctl rehearse: {scenario}: traffic.rps: Input should be greater than 0" in (
        result.output
    )


def test_missing_prometheus_is_exit_2_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rehearsal.prometheus.PROMETHEUS", None)

    result = runner.invoke(app, ["rehearse", str(HEALTHY)])

    assert result.exit_code == 2
    assert "the prometheus binary is not installed: install the Debian package prometheus" in (
        result.output
    )


def test_a_missing_extra_is_exit_2_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "rehearsal.requirements.EXTRA_MODULES",
        {"kmock_absent_here": "kmock", "celpy": "cel-python"},
    )

    result = runner.invoke(app, ["rehearse", str(HEALTHY)])

    assert result.exit_code == 2
    assert "the rehearse extra is not installed (missing kmock)" in result.output
    assert "pip install 'prompt-rollouts[rehearse]'" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--speed", "0.5"], "--speed", id="speed<1"),
        pytest.param(["--output", "yaml"], "--output", id="output"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["rehearse", str(HEALTHY), *args])

    assert result.exit_code == 2
    assert message in result.output


def test_without_the_rehearsal_package_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "rehearsal.requirements", None)  # as in the service image

    result = runner.invoke(app, ["rehearse", str(HEALTHY)])

    assert result.exit_code == 2
    assert "the rehearsal components are not installed (rehearsal.requirements)" in result.output
