"""The test Kubernetes API (tests/support/kube.py) made good enough for Helm v4.

`run_helm_cluster()` serves a `HelmKubeEmulator` on a free 127.0.0.1 port from a background
thread and writes a kubeconfig FILE for it (helm-sdkpy throttles a kubeconfig given as a YAML
string to 5 requests/s). Declared up front: the built-in kinds, the CRDs passed in (the tests
pass stand-ins for the Prometheus Operator's) and the `default` namespace. The PromptVersion
and kopf peering CRDs are not: the chart's `crds/` installs them through Helm.

The base emulator already has PUT, 409 AlreadyExists, labelSelector on LIST and the core
discovery groupVersion ("/v1" -> "v1"). Helm needs more, one line each on why:

- protobuf request bodies: client-go's typed clients send Secrets (Helm's release storage),
  ConfigMaps, Namespaces and DeleteOptions as protobuf; they are decoded into JSON before
  kmock reads them (kmock decodes every body as UTF-8 text and fails).
- server-side apply (PATCH `application/apply-patch+yaml`) creates a missing object and
  replaces a present one (kmock: 404; a merge would never drop a field the chart removed).
- a created CustomResourceDefinition is served at once and reports NamesAccepted and
  Established (Helm waits for both before it applies the objects of those kinds).
- `/openapi/v2` answers an empty document: `helm test` validates its hooks client-side and
  fails without one; empty, it validates nothing (the tests use kubernetes-validate).
- `pod_runner` (optional) "runs" every created Pod and writes the phase it returns to the
  Pod's status: `helm test` waits for Succeeded or Failed.

Not emulated: RBAC, admission, schema validation, controllers (no Deployment ever gets a
Pod: install with `wait=False`), Helm's Rollback (broken in helm-sdkpy: no wait strategy).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime
import json
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import httpx
import kmock
import yaml
from multidict import CIMultiDict, CIMultiDictProxy

from tests.support.kube import KubeEmulator, write_kubeconfig

__all__ = ["HelmCluster", "HelmKubeEmulator", "decode_protobuf", "run_helm_cluster"]

_MAGIC = b"k8s\x00"  # Kubernetes' protobuf envelope (runtime.Unknown follows)
_APPLY = "application/apply-patch"
# The empty OpenAPI v2 document `helm test` needs (see the module docstring).
_OPENAPI_V2 = {"swagger": "2.0", "info": {"title": "emulator", "version": "v1"}, "paths": {}}
_OPENAPI_V2_PB = b"\n\x032.0"  # gnostic openapi_v2.Document{swagger: "2.0"}
_OPENAPI_V2_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_PODS = kmock.resource("", "v1", "pods")
_CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")

# -- protobuf: just enough of the wire format and of the core/v1 messages Helm sends -----------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs: varints as int, length-delimited fields as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(data, pos)
            yield number, data[pos : pos + size]
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _entry(data: bytes) -> tuple[str, bytes]:
    """A map<string, T> entry: key = 1, value = 2."""
    parts = dict(_fields(data))
    key, value = parts.get(1, b""), parts.get(2, b"")
    assert isinstance(key, bytes) and isinstance(value, bytes)
    return key.decode(), value


def _strings(data: Mapping[int, list[Any]], number: int) -> dict[str, str]:
    return {k: v.decode() for k, v in map(_entry, data.get(number, []))}


def _group(data: bytes) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = {}
    for number, value in _fields(data):
        grouped.setdefault(number, []).append(value)
    return grouped


def _metadata(data: bytes) -> dict[str, Any]:
    """ObjectMeta: the fields a client sets (server-owned ones are the emulator's to set)."""
    f = _group(data)
    meta: dict[str, Any] = {}
    scalars = ((1, "name"), (2, "generateName"), (3, "namespace"), (6, "resourceVersion"))
    for number, name in scalars:
        if f.get(number) and f[number][-1]:
            meta[name] = f[number][-1].decode()
    for number, name in ((11, "labels"), (12, "annotations")):
        if f.get(number):
            meta[name] = _strings(f, number)
    if f.get(14):
        meta["finalizers"] = [v.decode() for v in f[14]]
    return meta


def _secret(f: dict[int, list[Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if f.get(2):
        body["data"] = {k: base64.b64encode(v).decode() for k, v in map(_entry, f[2])}
    if f.get(3):
        body["type"] = f[3][-1].decode()
    if f.get(4):
        body["stringData"] = _strings(f, 4)
    if f.get(5):
        body["immutable"] = bool(f[5][-1])
    return body


def _config_map(f: dict[int, list[Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if f.get(2):
        body["data"] = _strings(f, 2)
    if f.get(3):
        body["binaryData"] = {k: base64.b64encode(v).decode() for k, v in map(_entry, f[3])}
    if f.get(4):
        body["immutable"] = bool(f[4][-1])
    return body


def _namespace(_: dict[int, list[Any]]) -> dict[str, Any]:
    return {}


_Fields = dict[int, list[Any]]
_DECODERS: dict[str, Callable[[_Fields], dict[str, Any]]] = {
    "Secret": _secret,
    "ConfigMap": _config_map,
    "Namespace": _namespace,
}
_BARE = {"DeleteOptions"}  # no ObjectMeta; the emulator ignores their fields


def decode_protobuf(payload: bytes) -> dict[str, Any]:
    """A Kubernetes protobuf body (Secret, ConfigMap, Namespace) as its JSON object."""
    if not payload.startswith(_MAGIC):
        raise ValueError("not a Kubernetes protobuf body (no k8s\\0 magic)")
    unknown = _group(payload[len(_MAGIC) :])
    type_meta = _group(unknown.get(1, [b""])[-1])
    api_version = type_meta.get(1, [b""])[-1].decode()
    kind = type_meta.get(2, [b""])[-1].decode()
    if kind in _BARE:
        return {"apiVersion": api_version, "kind": kind}
    if kind not in _DECODERS:
        raise ValueError(f"protobuf {kind or 'object'} bodies are not decoded by the emulator")
    raw = _group(unknown.get(2, [b""])[-1])
    body: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    body["metadata"] = _metadata(raw.get(1, [b""])[-1])
    body.update(_DECODERS[kind](raw))
    return body


# -- the emulator -------------------------------------------------------------------------------


#: Runs a created Pod somehow and returns its final phase ("Succeeded" or "Failed").
PodRunner = Callable[[dict[str, Any]], Awaitable[str]]


@attrs.define(kw_only=True)
class HelmKubeEmulator(KubeEmulator):
    """`KubeEmulator` plus protobuf bodies, server-side apply and CRD establishment.

    `pod_runner`, when set, "runs" every created Pod (e.g. a `helm test` hook) and records
    the phase it returns in the Pod's status, which is what Helm waits for.
    """

    pod_runner: PodRunner | None = None
    _tasks: set[asyncio.Task[None]] = attrs.field(factory=set, init=False)

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if raw_request.path == "/openapi/v2":  # an empty document: no kind has a schema
            if "protobuf" in raw_request.headers.get("Accept", ""):
                return aiohttp.web.Response(body=_OPENAPI_V2_PB, content_type=_OPENAPI_V2_TYPE)
            return aiohttp.web.json_response(_OPENAPI_V2)
        if "protobuf" in raw_request.headers.get("Content-Type", "") and raw_request.can_read_body:
            # Before kmock parses the request: it decodes every body as UTF-8 text.
            headers = CIMultiDict(raw_request.headers)
            headers["Content-Type"] = "application/json"
            headers.popall("Content-Length", None)
            raw_request = raw_request.clone(headers=CIMultiDictProxy(headers))
            try:
                body = json.dumps(decode_protobuf(await raw_request.read())).encode()
            except ValueError as exc:
                status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "status": "Failure"}
                status |= {"code": 415, "reason": "UnsupportedMediaType", "message": str(exc)}
                return aiohttp.web.json_response(status, status=415)
            raw_request._read_bytes = body  # aiohttp serves read()/text()/json() from it
        return await super().__call__(raw_request)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith(_APPLY) and request.data is None and request.text:
            data = yaml.safe_load(request.text)  # apply bodies may be YAML, not JSON
            request = self._relog(request, attrs.evolve(request, data=data))
        return await super()._handle(request)

    async def _update(self, request: kmock.Request) -> dict[str, Any]:
        if not request.headers.get("Content-Type", "").startswith(_APPLY):
            return await super()._update(request)
        assert request.resource is not None and request.name is not None
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return await self._create(request)  # apply creates a missing object
        # Helm is the only field manager here: apply replaces the object (as PUT does).
        replace = attrs.evolve(request, method=kmock.method.PUT)
        return await super()._update(replace)

    async def _create(self, request: kmock.Request) -> dict[str, Any]:
        body = await super()._create(request)
        if request.resource == _CRDS:
            self.serve_crd(body)  # served at once; then marked established
            key = (_CRDS, None, body["metadata"]["name"])
            established = copy.deepcopy(body)
            established["status"] = {
                "conditions": [
                    {"type": t, "status": "True", "reason": t, "lastTransitionTime": _stamp()}
                    for t in ("NamesAccepted", "Established")
                ],
                "acceptedNames": body["spec"]["names"],
                "storedVersions": [v["name"] for v in body["spec"]["versions"] if v.get("storage")],
            }
            return await self._store(key, established)
        if request.resource == _PODS and self.pod_runner is not None:
            task = asyncio.create_task(self._run_pod(copy.deepcopy(body)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return body

    async def _run_pod(self, body: dict[str, Any]) -> None:
        assert self.pod_runner is not None
        meta = body["metadata"]
        key = (_PODS, meta.get("namespace"), meta["name"])
        phase = await self.pod_runner(body)
        async with self._lock:
            if key in self.objects and not self.objects[key].deleted:
                done = copy.deepcopy(self.objects[key].raw)
                done["status"] = {"phase": phase}
                await self._store(key, done)


def _stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- running it ---------------------------------------------------------------------------------


@dataclass
class HelmCluster:
    """A running emulator: its URL, a kubeconfig file, and blocking read helpers."""

    url: str
    kubeconfig: Path
    emulator: HelmKubeEmulator  # runs on another thread's loop: read it, don't change it
    http: httpx.Client

    def list_objects(
        self, api: str, plural: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of a resource; `api` is "v1" or "group/version"."""
        base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
        scope = f"/namespaces/{namespace}" if namespace else ""
        response = self.http.get(f"{base}{scope}/{plural}")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    @property
    def crashes(self) -> list[Exception]:
        """Server-side failures other than Kubernetes errors: emulator bugs."""
        return [e for e in self.emulator.errors if not isinstance(e, kmock.KubernetesError)]


class _Thread(threading.Thread):
    def __init__(self, crds: list[dict[str, Any]], pod_runner: PodRunner | None) -> None:
        super().__init__(name="helm-kube-emulator", daemon=True)
        self.crds, self.pod_runner = crds, pod_runner
        self.ready, self.url = threading.Event(), ""
        self.emulator: HelmKubeEmulator | None = None
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the thread waiting on `ready`
            self.error = exc
        finally:
            self.ready.set()

    async def _serve(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        async with (
            HelmKubeEmulator(pod_runner=self.pod_runner) as emulator,
            kmock.Server(emulator) as server,
        ):
            emulator.declare_builtins()
            for crd in self.crds:
                emulator.declare_crd(crd)
            emulator.add_namespace("default")
            self.emulator, self.url = emulator, str(server.url).rstrip("/")
            self.ready.set()
            await self._stopping.wait()
            await emulator.close_watches()
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopping.set)


@contextlib.contextmanager
def run_helm_cluster(
    workdir: Path,
    crd_paths: Sequence[Path] = (),
    namespace: str = "default",
    pod_runner: PodRunner | None = None,
) -> Iterator[HelmCluster]:
    """Serve a HelmKubeEmulator until exit; `crd_paths` are CRDs declared up front."""
    crds = [
        doc
        for path in crd_paths
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc and doc.get("kind") == "CustomResourceDefinition"
    ]
    thread = _Thread(crds, pod_runner)
    thread.start()
    try:
        thread.ready.wait(10)
        if thread.emulator is None:
            raise RuntimeError("the Kubernetes emulator did not start") from thread.error
        kubeconfig = workdir / "kubeconfig"
        write_kubeconfig(kubeconfig, thread.url, namespace)
        with httpx.Client(base_url=thread.url, timeout=10.0) as http:
            yield HelmCluster(thread.url, kubeconfig, thread.emulator, http)
    finally:
        thread.stop()
        thread.join(timeout=10)
