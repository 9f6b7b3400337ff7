"""Chart tests: the real Helm v4 engine (helm-sdkpy) against the Kubernetes emulator.

helm-sdkpy needs Python >= 3.12, so these tests run in their own virtualenv, apart from the
main suite (which ignores tests/chart):

    /root/.pyenv/versions/3.12.1/bin/python -m venv .venv-helm
    .venv-helm/bin/pip install -r requirements/helm.lock
    .venv-helm/bin/python -m pytest tests/chart -p no:cacheprovider

Helm's Go runtime reads the environment the process STARTED with (not os.environ), so its
HELM_* homes cannot be set from here: unless the caller set them, this conftest re-executes
the same command once with them pointing into a throwaway directory (removed at exit), so
nothing lands in ~/.cache, ~/.config or ~/.local/share.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_sdkpy  # loads its Go library lazily, on the first Configuration
import pytest
import yaml

from tests.chart.helm_kube import HelmCluster, PodRunner, run_helm_cluster

_HELM_HOMES = {"HELM_CACHE_HOME": "cache", "HELM_CONFIG_HOME": "config", "HELM_DATA_HOME": "data"}
_THROWAWAY = "PROMPT_ROLLOUTS_HELM_HOME"  # set for the re-executed process, which removes it
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "prompt-rollouts"
MONITORING_CRDS = Path(__file__).with_name("monitoring-crds.yaml")
NAMESPACE = "default"
RELEASE = "rel"
#: Helm waits for nothing (no Pod ever runs in the emulator); hooks still wait.
TIMEOUT = 30

if _THROWAWAY in os.environ:
    atexit.register(shutil.rmtree, os.environ[_THROWAWAY], ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    """Re-execute once with the HELM_* homes set, unless the caller set them."""
    if _THROWAWAY in os.environ or all(name in os.environ for name in _HELM_HOMES):
        return
    home = tempfile.mkdtemp(prefix="helm-home-")
    env = {**os.environ, _THROWAWAY: home, "HELM_DRIVER": "secret"}
    env.update({name: os.path.join(home, folder) for name, folder in _HELM_HOMES.items()})
    env.pop("KUBECONFIG", None)  # only the emulator's kubeconfig file is ever used
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.stop_global_capturing()  # give the real stdout/stderr back first
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)  # the same command, once


def ci_values(name: str) -> dict[str, Any]:
    """The values of charts/prompt-rollouts/ci/<name>."""
    values = yaml.safe_load((CHART / "ci" / name).read_text(encoding="utf-8"))
    return values or {}


@dataclass
class Release:
    """What one install or upgrade returned: the rendered objects and the notes."""

    raw: dict[str, Any]
    objects: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        docs = yaml.safe_load_all(self.raw["manifest"])
        self.objects = [doc for doc in docs if doc]

    @property
    def notes(self) -> str:
        return str(self.raw["info"].get("notes", ""))

    @property
    def version(self) -> int:
        return int(self.raw["version"])

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name_suffix: str = "") -> dict[str, Any]:
        """The one object of `kind` whose name ends with `name_suffix`."""
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, f"{len(found)} {kind} objects named *{name_suffix}"
        return found[0]

    def kinds(self) -> set[str]:
        return {o["kind"] for o in self.objects}


class Helm:
    """Blocking helpers over helm-sdkpy's async actions, against one emulated cluster."""

    def __init__(self, cluster: HelmCluster) -> None:
        self.cluster = cluster
        self.config = helm_sdkpy.Configuration(
            namespace=NAMESPACE, kubeconfig=str(cluster.kubeconfig)
        )

    def install(self, values: dict[str, Any] | None = None, name: str = RELEASE) -> Release:
        action = helm_sdkpy.Install(self.config)
        coroutine = action.run(
            name, str(CHART), values=values or {}, wait=False, timeout=TIMEOUT,
            server_side_apply=True,
        )  # fmt: skip
        return Release(asyncio.run(coroutine))

    def upgrade(
        self, values: dict[str, Any] | None = None, name: str = RELEASE, **options: Any
    ) -> Release:
        """`helm upgrade`; with no values Helm reuses the last ones unless reset_values=True."""
        action = helm_sdkpy.Upgrade(self.config)
        coroutine = action.run(
            name, str(CHART), values=values or {}, wait=False, timeout=TIMEOUT,
            server_side_apply=True, **options,
        )  # fmt: skip
        return Release(asyncio.run(coroutine))

    def uninstall(self, name: str = RELEASE) -> dict[str, Any]:
        action = helm_sdkpy.Uninstall(self.config)
        result: dict[str, Any] = asyncio.run(action.run(name, wait=True, timeout=TIMEOUT))
        return result

    def test(self, name: str = RELEASE) -> dict[str, Any]:
        result: dict[str, Any] = asyncio.run(helm_sdkpy.ReleaseTest(self.config).run(name))
        return result

    def lint(self) -> dict[str, Any]:
        result: dict[str, Any] = asyncio.run(helm_sdkpy.Lint(self.config).run(str(CHART)))
        return result


ClusterFactory = Callable[..., HelmCluster]


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[ClusterFactory]:
    """Start an emulator (optionally with a pod runner); stopped after the test."""
    stack: list[Any] = []

    def start(pod_runner: PodRunner | None = None) -> HelmCluster:
        manager = run_helm_cluster(
            tmp_path, crd_paths=[MONITORING_CRDS], namespace=NAMESPACE, pod_runner=pod_runner
        )
        stack.append(manager)
        return manager.__enter__()

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.fixture
def cluster(make_cluster: ClusterFactory) -> Iterator[HelmCluster]:
    """An emulated cluster with the Prometheus Operator's kinds; asserts no emulator bug."""
    running = make_cluster()
    yield running
    assert running.crashes == [], "the emulator crashed: see the exceptions"


@pytest.fixture
def helm(cluster: HelmCluster) -> Helm:
    return Helm(cluster)
