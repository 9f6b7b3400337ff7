"""PromptVersions over the Kubernetes API, logged in the way kubectl logs in.

Used by the service (list + watch, read-only), the controller (status patches) and
``promptctl`` (annotations). Logging in (:mod:`api.session`) is ``kubernetes_asyncio``'s,
a port of the official client's loader kept in step with it: the pod's service account (its token
re-read as it rotates), else the current context of ``KUBECONFIG`` / ``~/.kube/config``
with static tokens, token files, client certificates, auth providers and ``exec``
credential plugins (the EKS, GKE and AKS way). An ``exec`` token is fetched again when
it expires, and once more when the API server answers 401.

Errors::

    KubeError           the API could not be reached, refused a request, or no
                        credentials could be loaded (``status`` holds the HTTP code)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from kubernetes_asyncio import client as kube_client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.watch import Watch

from api.session import SERVICE_ACCOUNT_DIR, KubeError, KubeSession, open_session, reason_of
from api.v1alpha1 import GROUP, VERSION

__all__ = [
    "SERVICE_ACCOUNT_DIR",
    "KubeError",
    "KubeSession",
    "PromptVersionClient",
    "WatchEvent",
    "open_session",
]

PLURAL = "promptversions"
_MERGE_PATCH = "application/merge-patch+json"
_T = TypeVar("_T")


@dataclass(frozen=True)
class WatchEvent:
    """One event of a watch: ADDED, MODIFIED, DELETED or BOOKMARK."""

    type: str
    object: dict[str, Any]


class PromptVersionClient:
    """PromptVersions in one namespace, or in all namespaces when `namespace` is None."""

    def __init__(self, session: KubeSession, namespace: str | None) -> None:
        self._session = session
        self._api = kube_client.CustomObjectsApi(session.api)
        self.namespace = namespace

    def _where(self, namespace: str | None) -> str:
        return namespace or self.namespace or "all namespaces"

    async def list(self) -> tuple[list[dict[str, Any]], str]:
        """Every PromptVersion, and the list's resourceVersion to watch from."""
        body: dict[str, Any] = await self._session.call(
            self._list_call(), f"list {PLURAL} in {self._where(None)}"
        )
        return list(body.get("items") or []), str(
            (body.get("metadata") or {}).get("resourceVersion", "")
        )

    def _list_call(self) -> Callable[..., Awaitable[Any]]:
        """The list function of this client's scope (a watch streams it with its options)."""
        if self.namespace:
            namespace = self.namespace

            async def namespaced(**extra: Any) -> Any:
                return await self._api.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, **extra
                )

            return namespaced

        async def cluster_wide(**extra: Any) -> Any:
            return await self._api.list_cluster_custom_object(GROUP, VERSION, PLURAL, **extra)

        return cluster_wide

    async def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        """One PromptVersion."""
        where = namespace or self._required_namespace()
        body: dict[str, Any] = await self._session.call(
            lambda: self._api.get_namespaced_custom_object(GROUP, VERSION, where, PLURAL, name),
            f"get {PLURAL}/{name} in {where}",
        )
        return body

    async def watch(
        self, resource_version: str, timeout_seconds: int = 300
    ) -> AsyncIterator[WatchEvent]:
        """Events after `resource_version` until the server ends the watch.

        A 410 (the resourceVersion is too old) raises KubeError with status 410: the caller
        lists again, as an informer does.
        """
        await self._session.renew()
        kwargs: dict[str, Any] = {
            "allow_watch_bookmarks": True,
            "timeout_seconds": timeout_seconds,
            "_request_timeout": timeout_seconds + 30,
        }
        if resource_version:
            kwargs["resource_version"] = resource_version
        watch = Watch()
        try:
            async with watch.stream(self._list_call(), **kwargs) as stream:
                async for event in stream:
                    body = event.get("raw_object") or event.get("object") or {}
                    yield WatchEvent(str(event.get("type")), dict(body))
        except ApiException as error:
            raise KubeError(f"watch: {error.status} {reason_of(error)}", error.status) from error
        except (aiohttp.ClientError, TimeoutError) as error:
            raise KubeError(f"watch: {type(error).__name__}: {error}") from error

    async def patch_status(
        self, name: str, status: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """JSON merge patch of `.status` through the status subresource (None deletes a key)."""
        where = namespace or self._required_namespace()
        body: dict[str, Any] = await self._session.call(
            lambda: self._api.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                where,
                PLURAL,
                name,
                {"status": dict(status)},
                # The stub omits `_content_type`; without it a dict body goes out as a
                # JSON patch, the first content type the operation lists.
                _content_type=_MERGE_PATCH,  # type: ignore[call-arg]
            ),
            f"patch {PLURAL}/{name}/status in {where}",
        )
        return body

    async def annotate(
        self, name: str, annotations: Mapping[str, str | None], namespace: str | None = None
    ) -> dict[str, Any]:
        """Set (or, with None, remove) annotations; the spec is never touched."""
        where = namespace or self._required_namespace()
        body: dict[str, Any] = await self._session.call(
            lambda: self._api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                where,
                PLURAL,
                name,
                {"metadata": {"annotations": dict(annotations)}},
                # The stub omits `_content_type`; without it a dict body goes out as a
                # JSON patch, the first content type the operation lists.
                _content_type=_MERGE_PATCH,  # type: ignore[call-arg]
            ),
            f"annotate {PLURAL}/{name} in {where}",
        )
        return body

    def _required_namespace(self) -> str:
        if not self.namespace:
            raise KubeError("a namespace is needed for this request")
        return self.namespace
