"""A small async client for PromptVersions over the Kubernetes API (httpx).

Used by the service (list + watch, read-only), the controller (status patches) and
``promptctl`` (annotations). Credentials come from the pod's service account when
running in a cluster, else from ``KUBECONFIG`` / ``~/.kube/config`` (token or client
certificate; CA or insecure-skip-tls-verify).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from api.v1alpha1 import GROUP, VERSION

__all__ = [
    "KubeConfig",
    "KubeError",
    "PromptVersionClient",
    "WatchEvent",
    "build_http_client",
    "load_kube_config",
]

PLURAL = "promptversions"
_SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeError(Exception):
    """The Kubernetes API could not be reached or refused a request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class KubeConfig:
    """Where the API server is and how to authenticate."""

    server: str
    namespace: str = "default"
    token: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


def _materialise(data: str | None, suffix: str) -> str | None:
    """Write base64 `data` from a kubeconfig to a private temp file (httpx wants paths)."""
    if not data:
        return None
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
        prefix="promptrollouts-", suffix=suffix, delete=False
    )
    handle.write(base64.b64decode(data))
    handle.close()
    os.chmod(handle.name, 0o600)
    return handle.name


def load_kube_config(path: Path | None = None) -> KubeConfig:
    """The in-cluster service account, else the current context of a kubeconfig file."""
    if (
        path is None
        and (_SERVICE_ACCOUNT / "token").exists()
        and "KUBERNETES_SERVICE_HOST" in os.environ
    ):
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        return KubeConfig(
            server=f"https://{host}:{port}",
            namespace=(_SERVICE_ACCOUNT / "namespace").read_text().strip(),
            token=(_SERVICE_ACCOUNT / "token").read_text().strip(),
            ca_file=str(_SERVICE_ACCOUNT / "ca.crt"),
        )
    candidates = (
        [path]
        if path
        else [Path(p) for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        or [Path.home() / ".kube" / "config"]
    )
    file = next((p for p in candidates if p.exists()), None)
    if file is None:
        raise KubeError("no kubeconfig found and not running in a cluster")
    config = yaml.safe_load(file.read_text()) or {}
    current = config.get("current-context")
    context = _named(config.get("contexts"), current, "context", file)
    cluster = _named(config.get("clusters"), context.get("cluster"), "cluster", file)
    user = (
        _named(config.get("users"), context.get("user"), "user", file)
        if context.get("user")
        else {}
    )
    return KubeConfig(
        server=str(cluster["server"]).rstrip("/"),
        namespace=str(context.get("namespace") or "default"),
        token=user.get("token"),
        ca_file=cluster.get("certificate-authority")
        or _materialise(cluster.get("certificate-authority-data"), ".crt"),
        cert_file=user.get("client-certificate")
        or _materialise(user.get("client-certificate-data"), ".crt"),
        key_file=user.get("client-key") or _materialise(user.get("client-key-data"), ".key"),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
    )


def _named(items: Any, name: Any, kind: str, file: Path) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            found: dict[str, Any] = item.get(kind) or {}
            return found
    raise KubeError(f"{file}: no {kind} named {name!r}")


def build_http_client(config: KubeConfig, timeout: float = 30.0) -> httpx.AsyncClient:
    """An httpx client for the API server described by `config`."""
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    verify: bool | str = False if config.insecure else (config.ca_file or True)
    cert = (config.cert_file, config.key_file) if config.cert_file and config.key_file else None
    return httpx.AsyncClient(
        base_url=config.server,
        headers=headers,
        verify=verify,
        cert=cert,
        timeout=httpx.Timeout(timeout, connect=5.0),
    )


@dataclass(frozen=True)
class WatchEvent:
    """One event of a watch: ADDED, MODIFIED, DELETED or BOOKMARK."""

    type: str
    object: dict[str, Any]


class PromptVersionClient:
    """PromptVersions in one namespace, or in all namespaces when `namespace` is None."""

    def __init__(self, http: httpx.AsyncClient, namespace: str | None) -> None:
        self._http = http
        self.namespace = namespace

    def _collection(self, namespace: str | None = None) -> str:
        namespace = namespace or self.namespace
        base = f"/apis/{GROUP}/{VERSION}"
        return f"{base}/namespaces/{namespace}/{PLURAL}" if namespace else f"{base}/{PLURAL}"

    async def _request(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            raise KubeError(f"{method} {url}: {type(error).__name__}: {error}") from error
        if response.status_code >= 400:
            raise KubeError(
                f"{method} {url}: {response.status_code} {_reason(response)}", response.status_code
            )
        body: dict[str, Any] = response.json()
        return body

    async def list(self) -> tuple[list[dict[str, Any]], str]:
        """Every PromptVersion, and the list's resourceVersion to watch from."""
        body = await self._request("GET", self._collection())
        return list(body.get("items") or []), str(
            body.get("metadata", {}).get("resourceVersion", "")
        )

    async def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        """One PromptVersion."""
        return await self._request("GET", f"{self._collection(namespace)}/{name}")

    async def watch(
        self, resource_version: str, timeout_seconds: int = 300
    ) -> AsyncIterator[WatchEvent]:
        """Events after `resource_version` until the server ends the watch."""
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if resource_version:
            params["resourceVersion"] = resource_version
        try:
            async with self._http.stream(
                "GET", self._collection(), params=params, timeout=httpx.Timeout(None, connect=5.0)
            ) as response:
                if response.status_code >= 400:
                    raise KubeError(f"watch: {response.status_code}", response.status_code)
                async for line in response.aiter_lines():
                    if line.strip():
                        event = json.loads(line)
                        yield WatchEvent(str(event.get("type")), event.get("object") or {})
        except httpx.HTTPError as error:
            raise KubeError(f"watch: {type(error).__name__}: {error}") from error

    async def patch_status(
        self, name: str, status: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """JSON merge patch of `.status` through the status subresource (None deletes a key)."""
        return await self._request(
            "PATCH",
            f"{self._collection(namespace)}/{name}/status",
            content=json.dumps({"status": dict(status)}),
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def annotate(
        self, name: str, annotations: Mapping[str, str | None], namespace: str | None = None
    ) -> dict[str, Any]:
        """Set (or, with None, remove) annotations; the spec is never touched."""
        return await self._request(
            "PATCH",
            f"{self._collection(namespace)}/{name}",
            content=json.dumps({"metadata": {"annotations": dict(annotations)}}),
            headers={"Content-Type": "application/merge-patch+json"},
        )


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message") or body.get("reason") or body)[:200]
