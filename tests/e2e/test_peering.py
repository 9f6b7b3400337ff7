"""Leader election: two controller replicas with kopf peering; only one ever acts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.kube import CRD_PATH, KubeCluster, run_kube_emulator
from tests.support.net import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PEERING = "apiVersion: kopf.dev/v1\nkind: ClusterKopfPeering\nmetadata:\n  name: prompt-rollouts\n"


@contextmanager
def _controller(
    cluster: KubeCluster, priority: int, log: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {
        **os.environ,
        **cluster.env,
        "PROMETHEUS_URL": "http://127.0.0.1:9",
        "CONTROLLER_PRIORITY": str(priority),
        "CONTROLLER_METRICS_PORT": str(port),
        "CONTROLLER_METRICS_HOST": "127.0.0.1",
    }
    command = [sys.executable, "-m", "kopf", "run", "-A", "--peering=prompt-rollouts"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "-m", "controller.operator"], env=env, stdout=output, stderr=output, cwd=ROOT
        )
        metrics = f"http://127.0.0.1:{port}/metrics"
        try:
            # Started means configured (the metrics server opens in the startup handler);
            # on a loaded machine the imports alone can take many seconds.
            _wait(lambda: _serving(metrics), 60, f"the controller (priority {priority}) to start")
            yield process, metrics
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _weights_set(metrics_url: str) -> set[str]:
    try:
        text = httpx.get(metrics_url, timeout=2).text
    except httpx.HTTPError:
        return set()
    return {
        line.split('version="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("promptrollouts_controller_weight_percent{")
    }


def _serving(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_only_the_highest_priority_replica_acts_and_the_other_takes_over(tmp_path: Path) -> None:
    with run_kube_emulator((CRD_PATH, ROOT / "crds" / "kopf-peering.yaml")) as cluster:
        assert (
            cluster.kubectl("apply", "--validate=false", "-f", "-", input=PEERING).returncode == 0
        )
        with _controller(cluster, 100, tmp_path / "leader.log") as (leader, leader_metrics):  # noqa: SIM117 - the standby starts second
            with _controller(cluster, 10, tmp_path / "standby.log") as (_, standby_metrics):
                time.sleep(2)  # both have announced themselves
                applied = cluster.kubectl(
                    "apply", "--validate=false", "-f", str(ROOT / "prompts/policy-qa-1.0.0.yaml")
                )
                assert applied.returncode == 0, applied.stderr
                _wait(
                    lambda: (
                        (cluster.get("default", "policy-qa-1-0-0").get("status") or {}).get("phase")
                        == "Stable"
                    ),
                    15,
                    "the leader to make 1.0.0 stable",
                )
                assert _weights_set(leader_metrics) == {"1.0.0"}
                time.sleep(2)
                assert _weights_set(standby_metrics) == set()  # the standby never acted
                leader.terminate()
                leader.wait(10)
                cluster.kubectl(
                    "apply", "--validate=false", "-f", str(ROOT / "prompts/policy-qa-1.1.0.yaml")
                )
                _wait(
                    lambda: (
                        (cluster.get("default", "policy-qa-1-1-0").get("status") or {}).get("phase")
                        == "Progressing"
                    ),
                    20,
                    "the standby to take over and start the canary",
                )
                assert "1.1.0" in _weights_set(standby_metrics)
