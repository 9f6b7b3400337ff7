"""Start every piece of a rehearsal on 127.0.0.1, in order, and stop them all (I/O).

The Kubernetes API emulator (with the PromptVersion CRD), the fake model (per-model
faults from the scenario's ``models``), the real service (``python -m service`` in
cluster mode, following the emulator), a real Prometheus scraping it, and the real
controller (``kopf run``). Child processes run in sessions of their own and are stopped
on exit, Ctrl-C included (see `rehearsal.processes`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from rehearsal.kube import PROMPTVERSIONS, KubeCluster, run_kube_emulator
from rehearsal.net import free_port
from rehearsal.processes import ControllerProcess, ServerProcess
from rehearsal.prometheus import run_prometheus
from rehearsal.scenario import LoadedScenario

__all__ = ["SetupError", "Stack", "apply_manifest", "run_stack"]

#: Where `api`, `service`, `controller` … live (a checkout, or site-packages).
CODE_ROOT = Path(__file__).resolve().parents[1]
#: Recording rules of a checkout; loaded into Prometheus when present.
RULE_FILES = (CODE_ROOT / "observability" / "prometheus" / "recording-rules.yaml",)
#: Inherited from the caller's environment; everything else a child sees is set here.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")


class SetupError(Exception):
    """A piece of the rehearsal did not start, or a manifest was refused."""


@dataclass(frozen=True)
class Stack:
    """The running pieces, by address."""

    kube: KubeCluster
    model_url: str
    service_url: str
    prometheus_url: str
    controller: ControllerProcess
    workdir: Path


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _INHERITED}
    paths = [str(CODE_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def build_service_env(
    loaded: LoadedScenario, kube_env: Mapping[str, str], model_url: str
) -> dict[str, str]:
    """The service's settings for a rehearsal (pure but for the inherited PATH and HOME)."""
    corpus = loaded.scenario.corpus
    return {
        **_base_env(),
        **kube_env,
        "PROMPT_SOURCE": "cluster",
        "KUBE_NAMESPACE": "default",
        "MODEL_BASE_URL": f"{model_url}/v1",
        "MODEL_API_KEY": "sk-rehearsal",
        "QDRANT_PATH": ":memory:",
        "CORPORA": "",
        "CORPUS_DIR": str(loaded.corpus_dir) if loaded.corpus_dir else "",
        "CORPUS_COLLECTION": corpus.collection if corpus else "policies",
        "LOG_LEVEL": "WARNING",
        # Shadow steps: the canary's shadow answers run alongside the scenario's traffic
        # (bounded by each version's maxShadowPerMinute); a loaded machine slows them.
        "SHADOW_CONCURRENCY": "16",
    }


def _set_model_faults(loaded: LoadedScenario, model_url: str) -> None:
    for model, behaviour in loaded.scenario.models.items():
        faults = behaviour.to_faults().model_dump(mode="json", exclude_defaults=True)
        response = httpx.post(f"{model_url}/admin/faults/models/{model}", json=faults, timeout=10)
        if response.status_code != 200:
            raise SetupError(f"the fake model refused the faults of {model}: {response.text}")


def apply_manifest(kube: KubeCluster, manifest: Mapping[str, Any]) -> None:
    """Create a PromptVersion in the emulator (namespace default); SetupError if refused."""
    body = {**manifest, "metadata": {**manifest["metadata"], "namespace": "default"}}
    response = kube.http.post(kube.path("default", "", PROMPTVERSIONS), json=body)
    if response.status_code not in (200, 201):
        try:
            detail = response.json().get("message", response.text)
        except ValueError:
            detail = response.text
        name = manifest["metadata"].get("name")
        raise SetupError(f"the API refused PromptVersion {name}: {detail}")


@contextlib.contextmanager
def run_stack(
    loaded: LoadedScenario,
    workdir: Path,
    say: Callable[[str], None],
    controller_env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """Start everything (in order); yields the running `Stack`; stops it all on exit.

    `controller_env` adds to the controller's environment (e.g. NOTIFY_*)."""
    with contextlib.ExitStack() as stack:
        say("starting the Kubernetes API emulator (a rehearsal stand-in)")
        kube = stack.enter_context(run_kube_emulator())
        python = sys.executable
        port = free_port()
        model_url = f"http://127.0.0.1:{port}"
        models = [arg for name in loaded.models for arg in ("--model", name)]
        say(f"starting the fake model ({', '.join(loaded.models)})")
        stack.enter_context(
            ServerProcess(
                "the fake model",
                [
                    python,
                    "-m",
                    "promptctl.main",
                    "fake-model",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--seed",
                    str(loaded.scenario.seed),
                    *models,
                ],
                f"{model_url}/v1/models",
                _base_env(),
                workdir / "fake-model.log",
            )
        )
        _set_model_faults(loaded, model_url)
        port = free_port()
        service_url = f"http://127.0.0.1:{port}"
        say("starting the service (python -m service, cluster mode)")
        stack.enter_context(
            ServerProcess(
                "the service",
                [python, "-m", "service", "--host", "127.0.0.1", "--port", str(port)],
                f"{service_url}/healthz",  # answers once start-up (indexing) is done
                build_service_env(loaded, kube.env, model_url),
                workdir / "service.log",
                cwd=workdir,
                startup_timeout=120.0,
            )
        )
        say("starting Prometheus (first scrape in ~7 s)")
        rules = [path for path in RULE_FILES if path.exists()]
        prometheus_url = stack.enter_context(
            run_prometheus([service_url], rules, "1s", new_session=True)
        )
        say("starting the controller (kopf run)")
        controller = ControllerProcess(
            {
                **_base_env(),
                **kube.env,
                "PROMETHEUS_URL": prometheus_url,
                "SERVICE_URL": service_url,  # what eval gates ask (spec.rollout.evalGate)
                "CONTROLLER_METRICS_PORT": "0",
                "CONTROLLER_TICK_SECONDS": "1",
                **(controller_env or {}),
            },
            workdir,
            CODE_ROOT,
            new_session=True,
        )
        stack.enter_context(controller)
        yield Stack(kube, model_url, service_url, prometheus_url, controller, workdir)
