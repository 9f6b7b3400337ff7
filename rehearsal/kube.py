"""A Kubernetes API for rehearsals and tests: kmock's emulator, made good enough for kopf
and kubectl. A rehearsal stand-in, never a production API server: no authorisation, no
persistence, one process, everything in memory.

`run_kube_emulator()` serves a `KubeEmulator` over real HTTP on a free 127.0.0.1 port from a
background thread with its own event loop (so sync tests, async tests and kopf running on the
test's loop can all use it). The built-in kinds and the PromptVersion CRD (read from `crds/`)
are declared, the `default` namespace exists, and a kubeconfig is written for kubectl.
`run_operator()` runs kopf in-process against it. See docs/testing-kubernetes.md.

kmock 0.8 stores objects and streams events, but misses details kopf and kubectl rely on. The
shims, one line each on why:

- create: uid/resourceVersion/creationTimestamp/generation (kopf and kubectl read them), 201
  (clients expect Created), generateName (kopf's Events use it), 409 reason AlreadyExists.
- every write bumps resourceVersion and emits one watch event; a no-op patch does neither
  (kmock keeps the old resourceVersion; a real server skips no-ops, else controllers loop).
- a failed JSON-patch `test` is 422 (kmock: 500, which kopf's finalizer patches retry forever).
- status subresource: a write to /status changes only .status and a write to the object never
  changes .status (kmock merges both into the whole object); spec changes bump generation.
- PUT replaces the object (kmock has no PUT).
- /api/v1/namespaces[/NAME] is parsed as the namespaces resource (kmock: 500 or no kind).
- LIST answers carry kind/apiVersion/resourceVersion (kubectl refuses lists without a kind).
- labelSelector (equality) and fieldSelector metadata.name/namespace are applied (kmock ignores
  them; `kubectl wait pver/NAME` would see every object).
- watch streams are `application/json` (kubectl rejects kmock's octet-stream); they resume from
  `resourceVersion` by replaying recorded events (kmock replays every object as ADDED and loses
  what happened between a client's list and its watch, e.g. the deletion `kubectl delete`
  waits for); they end the initial events with a bookmark when asked (`sendInitialEvents`:
  watch-list clients hang without it); they close on shutdown (else the server waits on them).
- protobuf bodies (imperative `kubectl create ns`) get a clear 415 (kmock decodes JSON only);
  undeclared resources are 404 (kmock stores objects of any resource it is sent: typos pass).
- discovery: core groupVersion is "v1" (kmock: "/v1"); subresources carry no short names
  (kmock copies them, and kubectl warns that `pver` is ambiguous on every call).
- boolean query parameters are parsed as Go does (`watch=True` from the official Python
  clients is a watch; kmock only knows `true`).
- authentication: off unless a test sets `accepted_tokens`; then any other bearer token is 401
  (kmock accepts everyone), so credential plugins and token rotation can be tested.
- admission: objects of a served CRD are pruned to its schema (rejected with
  `fieldValidation=Strict`), validated against it and its `x-kubernetes-validations` CEL rules,
  transition rules included, with a 422 Invalid listing the causes (kmock stores anything;
  see admission.py).
- `kubectl get` asks for a Table: the CRD's additionalPrinterColumns are rendered (simple
  `.a.b` paths only), so printer columns can be tested.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import datetime
import gzip
import importlib.resources
import os
import re
import secrets
import string
import subprocess
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import httpx
import jsonpatch
import jsonpointer
import kmock
import kopf
import yaml

from rehearsal.admission import InvalidObjectError, admit

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

ObjectKey = tuple[kmock.resource, str | None, str]

# Above kmock's own fallbacks (-inf), below any reaction a test adds (0).
_SHIM_PRIORITY = -1e9
# kmock's path parser reads ".../namespaces" as "a namespace name follows", so namespace objects
# are re-addressed as if they lived in this pseudo-namespace, then put back in `_handle`.
_NS_MARK = "~namespaces~"
_NAMESPACE_PATH = re.compile(
    r"/api/v1/namespaces(?:/(?P<name>[^/]+)(?:/(?P<sub>status|finalize))?)?/?"
)
_CLOSE = object()  # put on every event bus at shutdown: open watch streams end
_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_NAME_CHARS = string.ascii_lowercase + string.digits
_CHANGES = ("ADDED", "MODIFIED", "DELETED")
_HISTORY = 10_000  # watch events kept per resource, to resume a watch from a resourceVersion
_GONE = {
    "kind": "Status",
    "apiVersion": "v1",
    "code": 410,
    "reason": "Expired",
    "status": "Failure",
}


_UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "code": 401,
    "reason": "Unauthorized",
    "status": "Failure",
    "message": "Unauthorized",
}


_BOOLEAN_PARAMS = {"watch", "allowWatchBookmarks", "sendInitialEvents"}


def _go_bool(key: str, value: str) -> str:
    """Boolean query parameters as the API server parses them (Go's strconv.ParseBool): the
    official Python clients send `watch=True`, which kmock reads as "not a watch"."""
    if key in _BOOLEAN_PARAMS and value in {"1", "t", "T", "TRUE", "True"}:
        return "true"
    if key in _BOOLEAN_PARAMS and value in {"0", "f", "F", "FALSE", "False"}:
        return "false"
    return value


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(timestamp: str) -> str:
    """kubectl's short age: 7s, 5m, 3h, 2d."""
    born = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = max(0, int((datetime.datetime.now(datetime.UTC) - born).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _revision_of(event: Mapping[str, Any]) -> int:
    return int(event["object"]["metadata"]["resourceVersion"])


def _group_version(resource: kmock.resource) -> str:
    return f"{resource.group}/{resource.version}".lstrip("/")


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (kmock's own refuses to put a dict where a scalar was)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _json_path(body: Mapping[str, Any], path: str) -> Any:
    value: Any = body
    for part in path.strip(".").split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _split_term(term: str) -> tuple[str, str, str]:
    """A selector term: "a!=b" -> ("a", "!=", "b"); "!a" -> ("!a", "", "")."""
    parts = [part.strip() for part in re.split(r"(!=|==|=)", term, maxsplit=1)]
    key, op, value = [*parts, "", ""][:3]
    return key, op, value


def _match_selectors(body: Mapping[str, Any], params: Mapping[str, str]) -> bool:
    """Equality-based labelSelector and metadata.name/namespace fieldSelector."""
    meta = body.get("metadata", {})
    labels = meta.get("labels") or {}
    for term in filter(None, params.get("labelSelector", "").split(",")):
        if "(" in term or " in " in term or " notin " in term:
            raise kmock.KubernetesError(400, "BadRequest", f"unsupported selector {term!r}")
        key, op, value = _split_term(term)
        if op == "!=":
            ok = labels.get(key) != value
        elif op:
            ok = labels.get(key) == value
        else:
            ok = (key.lstrip("!") in labels) != key.startswith("!")
        if not ok:
            return False
    fields = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace")}
    for term in filter(None, params.get("fieldSelector", "").split(",")):
        key, op, value = _split_term(term)
        if key in fields and (fields[key] == value) == (op == "!="):
            return False
    return True


def _decide_update(
    old: dict[str, Any], patched: dict[str, Any], *, to_status: bool, has_status: bool
) -> dict[str, Any]:
    """The stored object after a write: status subresource rules, server-owned metadata kept."""
    if to_status:  # /status changes .status and nothing else
        new = copy.deepcopy(old)
        new.pop("status", None)
        if "status" in patched:
            new["status"] = patched["status"]
        return new
    new = copy.deepcopy(patched)
    if has_status:  # the object itself: .status stays as it was
        new.pop("status", None)
        if "status" in old:
            new["status"] = old["status"]
    meta = new.setdefault("metadata", {})
    for field in (
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "generation",
    ):
        meta.pop(field, None)
        if field in old["metadata"]:
            meta[field] = old["metadata"][field]
    meta["resourceVersion"] = old["metadata"].get("resourceVersion")
    spec_before = {k: v for k, v in old.items() if k not in {"metadata", "status"}}
    spec_after = {k: v for k, v in new.items() if k not in {"metadata", "status"}}
    if spec_before != spec_after:  # controllers compare it with status.observedGeneration
        meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
    return new


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """kmock's stateful Kubernetes emulator with the shims kopf 1.45 and kubectl 1.32 need."""

    #: Bearer tokens the API accepts (401 for any other request); None serves anyone.
    accepted_tokens: set[str] | None = attrs.field(default=None, init=False)
    _revision: int = attrs.field(default=0, init=False)
    _columns: dict[kmock.resource, list[dict[str, Any]]] = attrs.field(factory=dict, init=False)
    _schemas: dict[kmock.resource, dict[str, Any]] = attrs.field(factory=dict, init=False)
    _history: dict[kmock.resource, collections.deque[dict[str, Any]]] = attrs.field(
        factory=lambda: collections.defaultdict(lambda: collections.deque(maxlen=_HISTORY)),
        init=False,
    )

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        json_type: kmock.headers[None] = kmock.headers({"Content-Type": "application/json"})
        (self**_SHIM_PRIORITY)[kmock.action.WATCH] << json_type << self._watch

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
            creationTimestamp=_now(),
            generation=1,
        )
        return body

    def _info(self, resource: kmock.resource | None) -> kmock.ResourceInfo:
        if resource is not None and resource in self.resources:
            return self.resources[resource]
        return kmock.ResourceInfo()

    # -- routing ------------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if self.accepted_tokens is not None and not self._authorised(raw_request):
            return aiohttp.web.json_response(_UNAUTHORIZED, status=401)
        url = raw_request.rel_url
        query = {k: _go_bool(k, v) for k, v in url.query.items()}
        match = _NAMESPACE_PATH.fullmatch(raw_request.path)
        if match:
            path = f"/api/v1/namespaces/{_NS_MARK}/namespaces"
            path += "".join(f"/{part}" for part in match.group("name", "sub") if part)
            url = url.with_path(path)
        if match or query != dict(url.query):
            raw_request = raw_request.clone(rel_url=url.with_query(query))
        return await super().__call__(raw_request)

    def _authorised(self, raw_request: aiohttp.web.BaseRequest) -> bool:
        scheme, _, token = raw_request.headers.get("Authorization", "").partition(" ")
        return scheme == "Bearer" and token in (self.accepted_tokens or ())

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.namespace == _NS_MARK:
            path = request.url.path.replace(f"/namespaces/{_NS_MARK}", "", 1)
            url = request.url.with_path(path).with_query(request.url.query)
            request = self._relog(request, attrs.evolve(request, namespace=None, url=url))
        if request.resource is not None and request.resource.plural:
            if request.resource not in self.resources:  # kmock would serve any name it is sent
                raise kmock.KubernetesResourceNotFoundError()
            if "protobuf" in request.headers.get("Content-Type", ""):  # kmock decodes JSON only
                raise kmock.KubernetesError(415, "UnsupportedMediaType", "send JSON, not protobuf")
            # All writes are done here, not by kmock (see the module docstring).
            async with self._lock:
                if request.action == kmock.action.CREATE:
                    return aiohttp.web.json_response(await self._create(request), status=201)
                if request.name is not None and request.method in {
                    kmock.method.PATCH,
                    kmock.method.PUT,
                }:
                    return aiohttp.web.json_response(await self._update(request))
                if request.name is not None and request.action == kmock.action.DELETE:
                    return aiohttp.web.json_response(await self._delete(request))
        return await super()._handle(request)

    def _relog(self, old: kmock.Request, new: kmock.Request) -> kmock.Request:
        """Swap a corrected request into kmock's log: reactions only match logged requests."""
        for index in range(len(self._requests) - 1, -1, -1):
            if self._requests[index] is old:
                self._requests[index] = new
                break
        return new

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
        body.setdefault("apiVersion", _group_version(request.resource))
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
                patched = _merge_patch(old, data)
            else:
                raise kmock.KubernetesError(400, "BadRequest", "unsupported patch body")
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise kmock.KubernetesError(422, "Invalid", str(exc)) from exc
        new = _decide_update(
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
        new["metadata"]["deletionTimestamp"] = _now()
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

    # -- reads --------------------------------------------------------------------------------

    def _selected(self, request: kmock.Request, body: Mapping[str, Any]) -> bool:
        meta = body.get("metadata", {})
        return (
            request.namespace in (None, meta.get("namespace"))
            and request.name in (None, meta.get("name"))
            and _match_selectors(body, request.params)
        )

    def _current(self, request: kmock.Request) -> list[dict[str, Any]]:
        return [
            obj.raw
            for (resource, _, _), obj in self.objects.items()
            if resource == request.resource and not obj.deleted and self._selected(request, obj.raw)
        ]

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        assert request.resource is not None
        if request.resource not in self._get_resources():
            raise kmock.KubernetesResourceNotFoundError()
        async with self._lock:
            items = self._current(request)
        if "as=Table" in request.headers.get("Accept", ""):
            return self._table(request.resource, items)
        return {
            "apiVersion": _group_version(request.resource),
            "kind": f"{self._info(request.resource).kind or 'Object'}List",
            "metadata": {"resourceVersion": str(self._revision)},
            "items": items,
        }

    async def _serve_fetch(self, request: kmock.Request) -> kmock.Payload:
        result = await super()._serve_fetch(request)
        if request.resource is not None and "as=Table" in request.headers.get("Accept", ""):
            assert isinstance(result, dict)
            return self._table(request.resource, [result])
        return result

    def _table(self, resource: kmock.resource, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Server-side printing (meta.k8s.io/v1 Table) with the CRD's printer columns."""
        columns = self._columns.get(
            resource, [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
        )
        definitions = [
            {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}
        ]
        definitions += [
            {
                "name": c["name"],
                "type": c["type"],
                "format": c.get("format", ""),
                "description": c.get("description", ""),
                "priority": c.get("priority", 0),
            }
            for c in columns
        ]

        def cell(body: dict[str, Any], column: dict[str, Any]) -> Any:
            value = _json_path(body, column["jsonPath"])
            return _age(value) if column["type"] == "date" and isinstance(value, str) else value

        rows = [
            {
                "cells": [body["metadata"]["name"], *(cell(body, c) for c in columns)],
                "object": {
                    "apiVersion": "meta.k8s.io/v1",
                    "kind": "PartialObjectMetadata",
                    "metadata": body["metadata"],
                },
            }
            for body in items
        ]
        return {
            "apiVersion": "meta.k8s.io/v1",
            "kind": "Table",
            "metadata": {"resourceVersion": str(self._revision)},
            "columnDefinitions": definitions,
            "rows": rows,
        }

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        result = await super()._serve_version(request)
        if isinstance(result, dict):
            result["groupVersion"] = str(result.get("groupVersion", "")).lstrip("/")
            for entry in result.get("resources", []):
                if "/" in entry["name"]:  # subresources have no short names, or kubectl warns
                    entry.update(shortNames=[], categories=[])
        return result

    async def _watch(self, request: kmock.Request) -> AsyncIterator[kmock.Payload]:
        assert request.resource is not None
        yield b""  # kmock sends the headers with the first chunk: send them now
        bus = self._buses[request.resource]
        since = request.params.get("resourceVersion", "")
        initial = request.params.get("sendInitialEvents") == "true" or since in ("", "0")
        async with self._lock:  # mark the bus while reading: no event falls in between
            mark = await bus.mark()
            replay: list[dict[str, Any]]
            if initial:  # no resourceVersion: every object as ADDED (kmock does so always)
                replay = [{"type": "ADDED", "object": body} for body in self._current(request)]
            else:  # else what happened since, deletions included (`kubectl delete` waits on it)
                history = self._history[request.resource]
                replay = [e for e in history if _revision_of(e) > int(since)]
                if len(history) == history.maxlen and _revision_of(history[0]) > int(since) + 1:
                    replay = [{"type": "ERROR", "object": _GONE}]  # clients re-list on 410
        try:
            for event in replay:
                if event["type"] == "ERROR" or self._selected(request, event["object"]):
                    yield self._as_table(request, event)
            if request.params.get("sendInitialEvents") == "true":
                yield {
                    "type": "BOOKMARK",
                    "object": {
                        "apiVersion": _group_version(request.resource),
                        "kind": self._info(request.resource).kind or "Object",
                        "metadata": {
                            "resourceVersion": str(self._revision),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                }
            async for event in bus.stream(since=mark):
                if event is _CLOSE:
                    return
                if self._selected(request, event["object"]):
                    yield self._as_table(request, event)
        finally:
            await bus.unmark(mark)

    def _as_table(self, request: kmock.Request, event: dict[str, Any]) -> dict[str, Any]:
        """`kubectl get -w` asks for Tables: each event then carries a one-row Table."""
        table = "as=Table" in request.headers.get("Accept", "")
        if request.resource is None or not table or event["type"] not in _CHANGES:
            return event
        return {"type": event["type"], "object": self._table(request.resource, [event["object"]])}

    async def close_watches(self) -> None:
        """End every open watch stream (the HTTP server would wait for them on shutdown)."""
        for bus in list(self._buses.values()):
            await bus.put(_CLOSE)


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
