"""The emulator's store: what it serves (built-in kinds, CRDs, namespaces) and every write.

kmock stores objects but misses what kopf and kubectl rely on when writing; this layer does
every create, patch, PUT and delete itself, under the emulator's lock: server-owned metadata
(uid, resourceVersion, creationTimestamp, generation), generateName, 201/409/422 answers, the
status subresource, finalizers, admission against the CRD's schema and CEL rules
(:mod:`rehearsal.admission`), and one recorded watch event per real change. Why each of
these is needed is listed in :mod:`rehearsal.kmock_patches`.
"""

from __future__ import annotations

import collections
import copy
import gzip
import importlib.resources
import secrets
import string
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
import jsonpatch
import jsonpointer
import kmock

from rehearsal.admission import InvalidObjectError, admit
from rehearsal.kube_rules import decide_update, group_version, merge_patch, now_stamp

__all__ = ["ObjectKey", "StoringEmulator"]

ObjectKey = tuple[kmock.resource, str | None, str]

_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_NAME_CHARS = string.ascii_lowercase + string.digits
_HISTORY = 10_000  # watch events kept per resource, to resume a watch from a resourceVersion


@attrs.define(kw_only=True)
class StoringEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with our declarations and our writes (see rehearsal.kmock_patches)."""

    #: Bearer tokens the API accepts (401 for any other request); None serves anyone.
    accepted_tokens: set[str] | None = attrs.field(default=None, init=False)
    _revision: int = attrs.field(default=0, init=False)
    _columns: dict[kmock.resource, list[dict[str, Any]]] = attrs.field(factory=dict, init=False)
    _schemas: dict[kmock.resource, dict[str, Any]] = attrs.field(factory=dict, init=False)
    _history: dict[kmock.resource, collections.deque[dict[str, Any]]] = attrs.field(
        factory=lambda: collections.defaultdict(lambda: collections.deque(maxlen=_HISTORY)),
        init=False,
    )

    # -- declarations (call before serving, or from the emulator's loop) ----------------------

    def declare_builtins(self) -> None:
        """kmock's bundled built-in kinds; `load_bundled()` warns (an error here) on 3.11."""
        bundle = importlib.resources.files("kmock._internal").joinpath("resources.json.gz")
        self.resources.load_data(gzip.decompress(bundle.read_bytes()))

    def declare_crd(self, crd: Mapping[str, Any]) -> None:
        """Serve every served version of a CustomResourceDefinition, and store the CRD."""
        self.serve_crd(crd)
        crds = "apiextensions.k8s.io/v1/customresourcedefinitions"
        self.objects[crds, None, crd["metadata"]["name"]] = self._stamp(copy.deepcopy(dict(crd)))

    def serve_crd(self, crd: Mapping[str, Any]) -> None:
        """Serve every served version of a CustomResourceDefinition (without storing it)."""
        spec, names = crd["spec"], crd["spec"]["names"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            resource = kmock.resource(spec["group"], version["name"], names["plural"])
            self.resources[resource] = kmock.ResourceInfo(
                kind=names["kind"],
                singular=names.get("singular", names["kind"].lower()),
                namespaced=spec["scope"] == "Namespaced",
                verbs=_VERBS,
                shortnames=names.get("shortNames", ()),
                categories=names.get("categories", ()),
                subresources=version.get("subresources", {}).keys(),
            )
            self._columns[resource] = list(version.get("additionalPrinterColumns", ()))
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if schema:
                self._schemas[resource] = schema

    def add_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        self.objects["v1/namespaces", None, name] = self._stamp(body)

    def _stamp(self, body: dict[str, Any]) -> dict[str, Any]:
        self._revision += 1
        body.setdefault("metadata", {}).update(
            uid=str(uuid.uuid4()),
            resourceVersion=str(self._revision),
            creationTimestamp=now_stamp(),
            generation=1,
        )
        return body

    def _info(self, resource: kmock.resource | None) -> kmock.ResourceInfo:
        if resource is not None and resource in self.resources:
            return self.resources[resource]
        return kmock.ResourceInfo()

    # -- writes (under self._lock) ------------------------------------------------------------

    def _existing(self, request: kmock.Request) -> tuple[ObjectKey, dict[str, Any]]:
        assert request.resource is not None
        assert request.name is not None
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        return key, copy.deepcopy(self.objects[key].raw)

    async def _publish(self, resource: kmock.resource, kind: str, body: dict[str, Any]) -> None:
        event = {"type": kind, "object": copy.deepcopy(body)}
        self._history[resource].append(event)
        await self._buses[resource].put(event)

    async def _create(self, request: kmock.Request) -> dict[str, Any]:
        assert request.resource is not None
        if not isinstance(request.data, Mapping):
            raise kmock.KubernetesError(400, "BadRequest", "the body must be a JSON object")
        body = copy.deepcopy(dict(request.data))
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(_NAME_CHARS) for _ in range(5)
            )
        if not meta.get("name"):
            raise kmock.KubernetesError(422, "Invalid", "metadata.name: Required value")
        if request.namespace is not None:
            meta["namespace"] = request.namespace
        key = (request.resource, meta.get("namespace"), meta["name"])
        if key in self.objects and not self.objects[key].deleted:
            raise kmock.KubernetesError(409, "AlreadyExists", f"{meta['name']!r} already exists")
        info = self._info(request.resource)
        body.setdefault("apiVersion", group_version(request.resource))
        if info.kind:
            body.setdefault("kind", info.kind)
        if "status" in info.subresources:
            body.pop("status", None)  # a status subresource ignores .status on create
        body = self._admit(request, body, None)
        self._stamp(body)
        if key in self.objects:
            self.objects[key].create(body)
        else:
            self.objects[key] = body
        await self._publish(request.resource, "ADDED", body)
        return body

    async def _update(self, request: kmock.Request) -> dict[str, Any]:
        """PATCH (JSON merge or JSON patch) and PUT."""
        key, old = self._existing(request)
        data = request.data
        wanted = (
            data.get("metadata", {}).get("resourceVersion") if isinstance(data, Mapping) else None
        )
        if wanted and wanted != old["metadata"].get("resourceVersion"):
            raise kmock.KubernetesError(409, "Conflict", "the object has been modified")
        try:
            if request.method == kmock.method.PUT and isinstance(data, Mapping):
                patched = copy.deepcopy(dict(data))
            elif isinstance(data, list):
                patched = jsonpatch.apply_patch(old, data)
            elif isinstance(data, Mapping):
                patched = merge_patch(old, data)
            else:
                raise kmock.KubernetesError(400, "BadRequest", "unsupported patch body")
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise kmock.KubernetesError(422, "Invalid", str(exc)) from exc
        new = decide_update(
            old,
            patched,
            to_status=request.subresource == "status",
            has_status="status" in self._info(request.resource).subresources,
        )
        if new == old:
            return old
        return await self._store(key, self._admit(request, new, old))

    def _admit(
        self, request: kmock.Request, new: dict[str, Any], old: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The CRD's schema and CEL rules, as the API server applies them (see admission.py)."""
        assert request.resource is not None
        schema = self._schemas.get(request.resource)
        if schema is None:
            return new
        strict = request.params.get("fieldValidation") == "Strict"
        try:
            return admit(schema, new, old, strict=strict)
        except InvalidObjectError as invalid:
            kind = f"{self._info(request.resource).kind}.{request.resource.group}"
            name = new.get("metadata", {}).get("name")
            message = f"{kind} {name!r} is invalid: " + ", ".join(invalid.causes)
            raise kmock.KubernetesError(422, "Invalid", message) from invalid

    async def _delete(self, request: kmock.Request) -> dict[str, Any]:
        key, old = self._existing(request)
        if old["metadata"].get("deletionTimestamp"):
            return old
        new = copy.deepcopy(old)
        new["metadata"]["deletionTimestamp"] = now_stamp()
        return await self._store(key, new)

    async def _store(self, key: ObjectKey, new: dict[str, Any]) -> dict[str, Any]:
        """Store a new version; an object marked for deletion goes once its finalizers are gone."""
        self._revision += 1
        new["metadata"]["resourceVersion"] = str(self._revision)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self.objects[key].delete()
            await self._publish(key[0], "DELETED", new)
        else:
            self.objects[key].history.append(new)
            await self._publish(key[0], "MODIFIED", new)
        return new
