"""One rollout stack per session, all on 127.0.0.1: emulator, fake model, service, Prometheus,
controller.

Started in that order, once (Prometheus' first scrape alone takes ~6.4 s), and stopped by the
fixtures that started them. Tests share the stack but never a prompt: each asks
`prompt_rollout` for its own prompt name, whose versions are deleted afterwards. Only ever one
controller runs (two standalone kopf operators would fight over the same objects): tests that
need another one restart `controller` with other settings and restore it themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from fakemodel.app import FakeModelState, create_fake_model_app
from service.app import create_app
from service.settings import Settings
from tests.support.kube import KubeCluster, run_kube_emulator
from tests.support.prometheus import PROMETHEUS, run_prometheus
from tests.support.rollout_harness import ControllerProcess, PromptRollout, controller_env, poll
from tests.support.servers import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="package")
def kube() -> Iterator[KubeCluster]:
    with run_kube_emulator() as cluster:
        yield cluster
        assert cluster.crashes == []


@pytest.fixture(scope="package")
def fake_model() -> Iterator[str]:
    with serve_in_thread(create_fake_model_app(FakeModelState())) as url:
        yield url


def _service_settings(model_url: str) -> Settings:
    return Settings(
        prompt_source="cluster",
        kube_namespace="default",
        prompts_dir=ROOT / "prompts",
        corpus_dir=None,
        qdrant_path=":memory:",
        qdrant_url=None,
        model_base_url=f"{model_url}/v1",
        model_api_key="sk-test-key",
        embedding_base_url=None,
        # Failures fast and final, and no breaker: an open breaker would outlive its test.
        model_max_attempts=2,
        model_backoff_base_seconds=0.01,
        model_backoff_max_seconds=0.02,
        breaker_consecutive_failures=1000,
        breaker_min_calls=1000,
    )


@pytest.fixture(scope="package")
def service(kube: KubeCluster, fake_model: str) -> Iterator[str]:
    """The service in cluster mode, following the weights the controller writes."""
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:  # read once, when the lifespan starts
            patch.setenv("KUBECONFIG", str(kube.kubeconfig))
            url = stack.enter_context(serve_in_thread(create_app(_service_settings(fake_model))))
        yield url


@pytest.fixture(scope="package")
def prometheus(service: str) -> Iterator[str]:
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (run `make system-deps`)")
    with run_prometheus([service], [], scrape_interval="1s") as url:
        yield url


@pytest.fixture(scope="package")
def controller(
    kube: KubeCluster, prometheus: str, service: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    """The controller, as a subprocess; tests may kill and restart it (but must leave it up)."""
    process = ControllerProcess(
        controller_env(kube, prometheus, service), tmp_path_factory.mktemp("controller"), ROOT
    )
    with process:
        # Under load kopf takes tens of seconds to import and start: tests' waits begin after.
        poll(
            lambda: "Activity 'configure' succeeded" in process.log_tail(200) or None,
            90,
            lambda: f"the controller to start; its log:\n{process.log_tail()}",
        )
        yield process


@pytest.fixture
def prompt_rollout(
    kube: KubeCluster,
    service: str,
    fake_model: str,
    controller: ControllerProcess,
    tmp_path: Path,
) -> Iterator[Callable[[str], PromptRollout]]:
    """`prompt_rollout("faq-x")`: a prompt of this test's own; its versions go afterwards."""
    made: list[PromptRollout] = []

    def make(prompt: str) -> PromptRollout:
        rollout = PromptRollout(kube, service, prompt, tmp_path, controller)
        made.append(rollout)
        return rollout

    yield make
    httpx.delete(f"{fake_model}/admin/faults", timeout=10).raise_for_status()
    if not controller.alive:  # a test that died between a kill and a restart
        controller.start()
    for rollout in made:
        rollout.delete_all()
