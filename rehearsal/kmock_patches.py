"""Every patch our Kubernetes emulator makes to kmock 0.8, each with why, in one place.

kmock stores objects and streams events, but misses details kopf and kubectl rely on. The
patches, one line each on why. Tagged by where they live: [store] `rehearsal.kube_store`
(declarations and every write), [here] `KubeEmulator` below (routing and reads); the pure
rules both follow are in `rehearsal.kube_rules`.

- [store] create: uid/resourceVersion/creationTimestamp/generation (kopf and kubectl read
  them), 201 (clients expect Created), generateName (kopf's Events use it), 409 AlreadyExists.
- [store] every write bumps resourceVersion and emits one watch event; a no-op patch does
  neither (kmock keeps the old resourceVersion; a real server skips no-ops, else controllers
  loop).
- [store] a failed JSON-patch `test` is 422 (kmock: 500, which kopf's finalizer patches retry
  forever).
- [store] status subresource: a write to /status changes only .status and a write to the
  object never changes .status (kmock merges both into the whole object); spec changes bump
  generation.
- [store] PUT replaces the object (kmock has no PUT).
- [store] built-in kinds are read from kmock's bundle with `importlib.resources`
  (`resources.load_bundled()` warns on Python 3.11, an error under our pytest settings).
- [store] admission: objects of a served CRD are pruned to its schema (rejected with
  `fieldValidation=Strict`), validated against it and its `x-kubernetes-validations` CEL
  rules, transition rules included, with a 422 Invalid listing the causes (kmock stores
  anything; see admission.py).
- [here] /api/v1/namespaces[/NAME] is parsed as the namespaces resource (kmock: 500 or no
  kind).
- [here] LIST answers carry kind/apiVersion/resourceVersion (kubectl refuses lists without a
  kind).
- [here] labelSelector (equality) and fieldSelector metadata.name/namespace are applied
  (kmock ignores them; `kubectl wait pver/NAME` would see every object).
- [here] watch streams are `application/json` (kubectl rejects kmock's octet-stream); they
  resume from `resourceVersion` by replaying recorded events (kmock replays every object as
  ADDED and loses what happened between a client's list and its watch, e.g. the deletion
  `kubectl delete` waits for); they end the initial events with a bookmark when asked
  (`sendInitialEvents`: watch-list clients hang without it); they close on shutdown (else the
  server waits on them).
- [here] protobuf bodies (imperative `kubectl create ns`) get a clear 415 (kmock decodes JSON
  only); undeclared resources are 404 (kmock stores objects of any resource it is sent: typos
  pass).
- [here] discovery: core groupVersion is "v1" (kmock: "/v1"); subresources carry no short
  names (kmock copies them, and kubectl warns that `pver` is ambiguous on every call).
- [here] boolean query parameters are parsed as Go does (`watch=True` from the official
  Python clients is a watch; kmock only knows `true`).
- [here] authentication: off unless a test sets `accepted_tokens`; then any other bearer
  token is 401 (kmock accepts everyone), so credential plugins and token rotation can be
  tested.
- [here] `kubectl get` asks for a Table: the CRD's additionalPrinterColumns are rendered
  (simple `.a.b` paths only), so printer columns can be tested.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp.web
import attrs
import kmock

from rehearsal.kube_rules import (
    AGE_ONLY,
    build_table,
    decide_bool_param,
    group_version,
    match_selectors,
    revision_of,
)
from rehearsal.kube_store import StoringEmulator

__all__ = ["KubeEmulator"]

# Above kmock's own fallbacks (-inf), below any reaction a test adds (0).
_SHIM_PRIORITY = -1e9
# kmock's path parser reads ".../namespaces" as "a namespace name follows", so namespace objects
# are re-addressed as if they lived in this pseudo-namespace, then put back in `_handle`.
_NS_MARK = "~namespaces~"
_NAMESPACE_PATH = re.compile(
    r"/api/v1/namespaces(?:/(?P<name>[^/]+)(?:/(?P<sub>status|finalize))?)?/?"
)
_CLOSE = object()  # put on every event bus at shutdown: open watch streams end
_CHANGES = ("ADDED", "MODIFIED", "DELETED")
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


@attrs.define(kw_only=True)
class KubeEmulator(StoringEmulator):
    """kmock's stateful Kubernetes emulator with the shims kopf 1.45 and kubectl 1.32 need."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        json_type: kmock.headers[None] = kmock.headers({"Content-Type": "application/json"})
        (self**_SHIM_PRIORITY)[kmock.action.WATCH] << json_type << self._watch

    # -- routing ------------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if self.accepted_tokens is not None and not self._authorised(raw_request):
            return aiohttp.web.json_response(_UNAUTHORIZED, status=401)
        url = raw_request.rel_url
        query = {k: decide_bool_param(k, v) for k, v in url.query.items()}
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

    # -- reads --------------------------------------------------------------------------------

    def _selected(self, request: kmock.Request, body: Mapping[str, Any]) -> bool:
        meta = body.get("metadata", {})
        return (
            request.namespace in (None, meta.get("namespace"))
            and request.name in (None, meta.get("name"))
            and match_selectors(body, request.params)
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
            "apiVersion": group_version(request.resource),
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
        return build_table(self._columns.get(resource, AGE_ONLY), items, self._revision)

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
                replay = [e for e in history if revision_of(e) > int(since)]
                if len(history) == history.maxlen and revision_of(history[0]) > int(since) + 1:
                    replay = [{"type": "ERROR", "object": _GONE}]  # clients re-list on 410
        try:
            for event in replay:
                if event["type"] == "ERROR" or self._selected(request, event["object"]):
                    yield self._as_table(request, event)
            if request.params.get("sendInitialEvents") == "true":
                yield {
                    "type": "BOOKMARK",
                    "object": {
                        "apiVersion": group_version(request.resource),
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
