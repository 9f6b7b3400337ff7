"""A Kubernetes API for rehearsals and tests: kmock's emulator, made good enough for kopf
and kubectl. A rehearsal stand-in, never a production API server: no authorisation, no
persistence, one process, everything in memory.

`run_kube_emulator()` serves a `KubeEmulator` over real HTTP on a free 127.0.0.1 port from a
background thread with its own event loop (so sync tests, async tests and kopf running on the
test's loop can all use it). The built-in kinds and the PromptVersion CRD (read from `crds/`)
are declared, the `default` namespace exists, and a kubeconfig is written for kubectl.
`run_operator()` runs kopf in-process against it. See docs/testing-kubernetes.md.
The kmock patches that make it so are listed, each with why, in `rehearsal.kmock_patches`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kmock
import kopf
import yaml

from rehearsal.kmock_patches import KubeEmulator

__all__ = [
    "CRD_PATH",
    "PROMPTVERSIONS",
    "KubeCluster",
    "KubeEmulator",
    "load_crds",
    "run_kube_emulator",
    "run_operator",
    "write_kubeconfig",
]

#: The CRD file of a source checkout (``make crds``); an installed package builds the same
#: CRD from `api.v1alpha1` instead (see `load_crds`).
CRD_PATH = Path(__file__).resolve().parents[1] / "crds" / "promptversion.yaml"
#: The PromptVersion resource, as kmock and `KubeCluster` helpers spell it.
PROMPTVERSIONS = "promptrollouts.io/v1alpha1/promptversions"


@dataclass
class KubeCluster:
    """A running emulator: its URL, a kubeconfig for it, and small blocking helpers.

    The helpers block for milliseconds (HTTP to another thread); in async tests, run
    `kubectl wait` and other slow commands through `asyncio.to_thread`.
    """

    url: str
    kubeconfig: Path
    env: dict[str, str]  # KUBECONFIG and a writable HOME, for kubectl
    emulator: KubeEmulator  # runs on another thread's loop: assert on it, don't change it
    http: httpx.Client

    def kubectl(
        self, *args: str, timeout: float = 30.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against the emulator; a non-zero exit does not raise."""
        return subprocess.run(  # noqa: S603 - our own arguments, no shell
            ["kubectl", *args],  # noqa: S607 - kubectl from PATH, as a user runs it
            env={**os.environ, **self.env},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    @property
    def crashes(self) -> list[Exception]:
        """Server-side failures other than Kubernetes errors (404, 409, 422...): emulator bugs."""
        return [e for e in self.emulator.errors if not isinstance(e, kmock.KubernetesError)]

    @staticmethod
    def path(namespace: str | None, name: str = "", resource: str = PROMPTVERSIONS) -> str:
        """The API path of a resource ("group/version/plural" or "v1/plural"), or of an object."""
        group, version, plural = ["", *resource.split("/")][-3:]
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        scope = f"/namespaces/{namespace}" if namespace else ""
        return f"{base}{scope}/{plural}" + (f"/{name}" if name else "")

    def get(
        self, namespace: str | None, name: str, resource: str = PROMPTVERSIONS
    ) -> dict[str, Any]:
        """GET one object; raises httpx.HTTPStatusError (404 included)."""
        response = self.http.get(self.path(namespace, name, resource))
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def list_objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """LIST a resource's objects, in every namespace unless one is given."""
        response = self.http.get(self.path(namespace, "", resource))
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def list_promptversions(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.list_objects(PROMPTVERSIONS, namespace)

    def patch(
        self,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        *,
        subresource: str = "",
        resource: str = PROMPTVERSIONS,
    ) -> dict[str, Any]:
        """JSON-merge-patch an object (or its subresource); returns the stored object."""
        path = self.path(namespace, name, resource) + (f"/{subresource}" if subresource else "")
        headers = {"Content-Type": "application/merge-patch+json"}
        response = self.http.patch(path, json=patch, headers=headers)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource: str = PROMPTVERSIONS
    ) -> dict[str, Any]:
        """Merge-patch `.status` through the status subresource, as the controller does."""
        return self.patch(
            namespace, name, {"status": status}, subresource="status", resource=resource
        )


class _EmulatorThread(threading.Thread):
    """Owns the event loop that the emulator and its HTTP server run on."""

    def __init__(self, crds: list[dict[str, Any]]) -> None:
        super().__init__(name="kube-emulator", daemon=True)
        self.crds = crds
        self.ready = threading.Event()
        self.url = ""
        self.emulator: KubeEmulator | None = None
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the thread that waits for `ready`
            self.error = exc
        finally:
            self.ready.set()

    async def _serve(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        async with KubeEmulator() as emulator, kmock.Server(emulator) as server:
            emulator.declare_builtins()
            for crd in self.crds:
                emulator.declare_crd(crd)
            emulator.add_namespace("default")
            self.emulator, self.url = emulator, str(server.url).rstrip("/")
            self.ready.set()
            await self._stopping.wait()
            await emulator.close_watches()
            await asyncio.sleep(0.05)  # let the open streams end before the server closes

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                self._loop.call_soon_threadsafe(self._stopping.set)


def load_crds(crd_paths: Sequence[Path] | None = None) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in `crd_paths`; None: the PromptVersion CRD, from
    `CRD_PATH` in a checkout, else generated from `api.v1alpha1` (the same document)."""
    if crd_paths is None:
        if not CRD_PATH.exists():
            from api.v1alpha1.crd import build_crd  # noqa: PLC0415 - only when installed

            return [build_crd()]
        crd_paths = (CRD_PATH,)
    return [
        doc
        for path in crd_paths
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc and doc.get("kind") == "CustomResourceDefinition"
    ]


def write_kubeconfig(path: Path, url: str, namespace: str = "default") -> None:
    """A kubeconfig with one context for the emulator at `url` (no credentials)."""
    context = {"cluster": "kube-emulator", "user": "kube-emulator", "namespace": namespace}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kube-emulator", "cluster": {"server": url}}],
        "users": [{"name": "kube-emulator", "user": {}}],
        "contexts": [{"name": "kube-emulator", "context": context}],
        "current-context": "kube-emulator",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


@contextlib.contextmanager
def run_kube_emulator(
    crd_paths: Sequence[Path] | None = None, startup_timeout: float = 10.0
) -> Iterator[KubeCluster]:
    """Serve a KubeEmulator on 127.0.0.1 until exit; works in sync and async tests alike.

    `crd_paths`: CustomResourceDefinition files (one or more documents each) to serve;
    None serves the PromptVersion CRD (`load_crds`).
    """
    crds = load_crds(crd_paths)
    thread = _EmulatorThread(crds)
    thread.start()
    try:
        thread.ready.wait(startup_timeout)
        if thread.emulator is None:
            raise RuntimeError("the Kubernetes emulator did not start") from thread.error
        with (
            tempfile.TemporaryDirectory(prefix="kube-emulator-") as tmp,
            httpx.Client(base_url=thread.url, timeout=10.0) as http,
        ):
            kubeconfig = Path(tmp) / "kubeconfig"
            write_kubeconfig(kubeconfig, thread.url)
            yield KubeCluster(
                url=thread.url,
                kubeconfig=kubeconfig,
                env={"KUBECONFIG": str(kubeconfig), "HOME": tmp},
                emulator=thread.emulator,
                http=http,
            )
    finally:
        thread.stop()
        thread.join(timeout=10)


@contextlib.asynccontextmanager
async def run_operator(
    cluster: KubeCluster,
    registry: kopf.OperatorRegistry,
    settings: kopf.OperatorSettings | None = None,
    ready_timeout: float = 10.0,
    stop_timeout: float = 10.0,
) -> AsyncIterator[None]:
    """Run kopf on the current loop against `cluster`: cluster-wide, standalone (no peering).

    Adds a login handler (id ``kube-emulator``) to `registry`: give it a registry built for the
    test (`kopf.OperatorRegistry()`), not kopf's global one.
    """

    @kopf.on.login(id="kube-emulator", registry=registry)
    def _login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=cluster.url, default_namespace="default")

    stop, ready = asyncio.Event(), asyncio.Event()
    operator = kopf.operator(
        registry=registry,
        settings=settings,
        clusterwide=True,
        standalone=True,
        stop_flag=stop,
        ready_flag=ready,
    )
    task = asyncio.create_task(operator, name="kopf-operator")
    try:
        async with asyncio.timeout(ready_timeout):
            await ready.wait()
        yield
    finally:
        stop.set()
        try:
            async with asyncio.timeout(stop_timeout):
                await task
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
