"""promptctl status/promote/abort/pause/resume/retry against the Kubernetes API emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from controller.rollout import REQUEST_ANNOTATION, Action
from promptctl.main import app
from promptctl.rollouts import choose_target
from tests.support.kube import KubeCluster, run_kube_emulator

NAMES = ("policy-qa-1-0-0", "policy-qa-1-1-0")


def _item(version: str, phase: str | None) -> dict[str, Any]:
    return {
        "metadata": {"name": f"qa-{version}"},
        "spec": {"prompt": "qa", "version": version},
        "status": {"phase": phase} if phase else {},
    }


@pytest.mark.parametrize(
    ("phases", "action", "target"),
    [
        ({"1.0.0": "Stable", "1.1.0": "Progressing"}, Action.PROMOTE, "qa-1.1.0"),
        ({"1.0.0": "Stable", "1.1.0": "Paused"}, Action.RESUME, "qa-1.1.0"),
        ({"1.0.0": "Stable", "1.1.0": "Progressing"}, Action.ABORT, "qa-1.1.0"),
        ({"1.0.0": "Stable", "1.1.0": "RolledBack", "1.2.0": "Aborted"}, Action.RETRY, "qa-1.2.0"),
        ({"1.0.0": "Stable", "1.1.0": "Paused"}, Action.PROMOTE_FULL, "qa-1.1.0"),
    ],
    ids=["promote-canary", "resume-paused", "abort-canary", "retry-newest-halted", "full"],
)
def test_choose_target(phases: dict[str, str], action: Action, target: str) -> None:
    items = [_item(v, p) for v, p in phases.items()]
    assert choose_target(items, "qa", action)["metadata"]["name"] == target


@pytest.mark.parametrize(
    ("phases", "action", "message"),
    [
        ({"1.0.0": "Stable"}, Action.PROMOTE, "1.0.0=Stable"),
        ({"1.0.0": "Stable", "1.1.0": "Progressing"}, Action.RESUME, "needs a version in Paused"),
        ({}, Action.ABORT, "no PromptVersion of prompt 'qa'"),
    ],
    ids=["nothing-to-promote", "resume-not-paused", "unknown-prompt"],
)
def test_choose_target_explains_refusals(
    phases: dict[str, str], action: Action, message: str
) -> None:
    items = [_item(v, p) for v, p in phases.items()]
    with pytest.raises(typer.BadParameter, match=message):
        choose_target(items, "qa", action)


@pytest.fixture(scope="module")
def cluster() -> Iterator[KubeCluster]:
    with run_kube_emulator() as cluster:
        assert cluster.kubectl("apply", "--validate=false", "-f", "prompts/").returncode == 0
        cluster.patch_status("default", NAMES[0], {"phase": "Stable", "weight": 90})
        cluster.patch_status(
            "default", NAMES[1], {"phase": "Progressing", "weight": 10, "stepIndex": 0}
        )
        yield cluster


@pytest.mark.integration
def test_status_shows_every_version(cluster: KubeCluster) -> None:
    result = CliRunner().invoke(
        app, ["status", "policy-qa", "--kubeconfig", str(cluster.kubeconfig)]
    )
    assert result.exit_code == 0, result.output
    assert "Progressing" in result.output and "Stable" in result.output
    assert "policy-qa-1-1-0" in result.output


@pytest.mark.integration
def test_status_shows_the_quality_line(cluster: KubeCluster) -> None:
    line = (
        "Failed: unknown rate 31 % vs 12 % stable, +19 pts (max +2 pts), p < 0.001, n = 412/1,930"
    )
    cluster.patch_status("default", NAMES[1], {"quality": line})
    result = CliRunner().invoke(
        app,
        ["status", "policy-qa", "--kubeconfig", str(cluster.kubeconfig)],
        env={"COLUMNS": "320"},
    )
    assert result.exit_code == 0, result.output
    assert "QUALITY" in result.output
    # one line when the terminal is wide enough; the stable version's cell stays empty
    assert [row for row in result.output.splitlines() if line in row], result.output


@pytest.mark.integration
@pytest.mark.parametrize(
    ("command", "action"),
    [(["promote"], "promote"), (["promote", "--full"], "promote-full"), (["abort"], "abort")],
    ids=["promote", "promote-full", "abort"],
)
def test_actions_annotate_the_canary_not_the_spec(
    cluster: KubeCluster, command: list[str], action: str
) -> None:
    before = cluster.get("default", NAMES[1])
    result = CliRunner().invoke(
        app, [*command, "policy-qa", "--kubeconfig", str(cluster.kubeconfig)]
    )
    assert result.exit_code == 0, result.output
    after = cluster.get("default", NAMES[1])
    assert after["metadata"]["annotations"][REQUEST_ANNOTATION].startswith(f"{action}@")
    assert after["spec"] == before["spec"]
    assert REQUEST_ANNOTATION not in (
        cluster.get("default", NAMES[0])["metadata"].get("annotations") or {}
    )


@pytest.mark.integration
def test_an_action_without_a_target_fails_clearly(cluster: KubeCluster) -> None:
    result = CliRunner().invoke(
        app, ["retry", "policy-qa", "--kubeconfig", str(cluster.kubeconfig)]
    )
    assert result.exit_code == 2
    assert "retry needs a version in RolledBack or Aborted" in result.output
