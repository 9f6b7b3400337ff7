"""Logging in to the Kubernetes API the way kubectl does (``kubernetes_asyncio``'s loader):
the pod's service account, else the kubeconfig's current context with static tokens,
token files, client certificates, auth providers and ``exec`` credential plugins, an
``exec`` token fetched again when it expires and once more after a 401.

Errors::

    KubeError           the API could not be reached, refused a request, or no
                        credentials could be loaded (``status`` holds the HTTP code)
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp
from kubernetes_asyncio import client as kube_client
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException
from kubernetes_asyncio.config.kube_config import KubeConfigLoader

__all__ = ["SERVICE_ACCOUNT_DIR", "KubeError", "KubeSession", "open_session", "reason_of"]

#: Where Kubernetes mounts a pod's service account.
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_T = TypeVar("_T")


class KubeError(Exception):
    """The Kubernetes API could not be reached or refused a request."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class KubeSession:
    """An API client, the namespace its context names, and how to renew its credentials."""

    api: kube_client.ApiClient
    namespace: str
    server: str
    _loader: KubeConfigLoader | None = field(default=None, repr=False)

    @property
    def uses_exec_plugin(self) -> bool:
        """Whether the credentials come from an ``exec`` plugin (and can be renewed)."""
        return self._loader is not None and "exec" in (self._loader._user or {})

    async def renew(self, *, force: bool = False) -> None:
        """Run the ``exec`` plugin again if its token expired (or always, with `force`)."""
        loader = self._loader
        if loader is None or not self.uses_exec_plugin:
            return
        if force and hasattr(loader, "exec_plugin_expiry"):
            del loader.exec_plugin_expiry
        try:
            await loader.load_from_exec_plugin()
        except Exception as error:  # the plugin's own failure, whatever it raised
            raise KubeError(f"exec credential plugin failed: {error}") from error
        token = getattr(loader, "token", None)
        if token:
            self.api.configuration.api_key["BearerToken"] = token

    async def call(self, request: Callable[[], Awaitable[_T]], what: str) -> _T:
        """Run one API request with fresh credentials, retried once after a 401."""
        for attempt in (1, 2):
            await self.renew(force=attempt == 2)
            try:
                return await request()
            except ApiException as error:
                if error.status == 401 and attempt == 1 and self.uses_exec_plugin:
                    continue
                raise KubeError(
                    f"{what}: {error.status} {reason_of(error)}", error.status
                ) from error
            except (aiohttp.ClientError, TimeoutError) as error:
                raise KubeError(f"{what}: {type(error).__name__}: {error}") from error
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def close(self) -> None:
        """Close the connection pool."""
        await self.api.close()

    async def __aenter__(self) -> KubeSession:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


async def open_session(
    kubeconfig: Path | None = None, *, service_account_dir: Path = SERVICE_ACCOUNT_DIR
) -> KubeSession:
    """The pod's service account in a cluster, else the kubeconfig's current context.

    An explicit `kubeconfig` always wins; otherwise the service account is used when
    ``KUBERNETES_SERVICE_HOST`` is set and its token is mounted, else ``$KUBECONFIG``
    (a list of files, merged as kubectl does) or ``~/.kube/config``.
    """
    configuration = kube_client.Configuration()
    token_file = service_account_dir / "token"
    try:
        if kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ and token_file.exists():
            kube_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration,
                token_filename=str(token_file),
                cert_filename=str(service_account_dir / "ca.crt"),
            )
            namespace_file = service_account_dir / "namespace"
            namespace = namespace_file.read_text().strip() if namespace_file.exists() else "default"
            return KubeSession(
                kube_client.ApiClient(configuration),
                namespace or "default",
                str(configuration.host),
            )
        files = str(kubeconfig) if kubeconfig else _kubeconfig_files()
        loader = await kube_config.load_kube_config(
            config_file=files, client_configuration=configuration, persist_config=False
        )
    except (ConfigException, OSError, ValueError) as error:
        raise KubeError(f"no usable Kubernetes credentials: {error}") from error
    except Exception as error:  # an exec plugin that failed or printed garbage
        raise KubeError(f"loading the kubeconfig failed: {error}") from error
    context = loader.current_context or {}
    namespace = str((context.get("context") or {}).get("namespace") or "default")
    return KubeSession(
        kube_client.ApiClient(configuration), namespace, str(configuration.host), loader
    )


def _kubeconfig_files() -> str:
    """``$KUBECONFIG`` as kubectl reads it (read now, not at import), else the default file."""
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    existing = [p for p in listed if Path(p).exists()]
    if listed and not existing:
        raise KubeError(f"none of the KUBECONFIG files exist: {', '.join(listed)}")
    if existing:
        return os.pathsep.join(existing)
    default = Path.home() / ".kube" / "config"
    if not default.exists():
        raise KubeError(f"no kubeconfig found ({default}) and not running in a cluster")
    return str(default)


def reason_of(error: ApiException) -> str:
    """The API server's message for a failed request, short."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        return str(error.reason or "")[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("reason") or error.reason or "")[:200]
    return str(error.reason or "")[:200]
