"""Run one eval gate (I/O): read the eval set from its ConfigMap, ask the service every case
on the canary and the stable version, judge it (:mod:`controller.eval_gate`), and keep the
full Markdown report in a ConfigMap owned by the PromptVersion.

Nothing here raises: every failure (ConfigMap missing or unreadable, invalid eval set,
unsupported checks, service unreachable, a version it does not serve, nothing evaluated,
the deadline) is a failed :class:`EvalOutcome` that names the problem. The whole run is
bounded by the gate's ``timeoutSeconds``; the service gets up to a third of it to load both
versions (it learns of a new PromptVersion through its own watch).

Errors::

    Exception
    └── EvalGateError   the gate cannot run; the message is the gate's reason
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx
from kubernetes_asyncio import client as kube_client
from kubernetes_asyncio.client.exceptions import ApiException

from api.session import KubeSession
from controller.eval_gate import (
    EvalCall,
    EvalOutcome,
    assess_evalset,
    build_eval_outcome,
    build_report_configmap,
)
from prompting.evals.asking import build_answer_body, read_answer, read_no_response
from prompting.evals.evalset import EvalCase, EvalSet, EvalSetError, parse_evalset
from prompting.evals.scoring import CaseResult, score_run

__all__ = ["EvalGateError", "EvalTarget", "call_service", "fetch_evalset", "run_eval_gate"]

#: Requests in flight at once against the service.
CONCURRENCY = 4
#: Seconds between two looks at the service's loaded versions while it catches up.
_POLL_SECONDS = 0.5


class EvalGateError(Exception):
    """The gate cannot run; the message says why."""


@dataclass(frozen=True)
class EvalTarget:
    """Where the run happens: the service to ask and the version object's namespace."""

    service_url: str
    namespace: str
    #: The PromptVersion's uid, so its report ConfigMap is garbage-collected with it.
    owner_uid: str | None = None
    api_key: str | None = None


async def fetch_evalset(kube: KubeSession, namespace: str, name: str, key: str) -> EvalSet:
    """The eval set under `key` of ConfigMap `name`."""
    where = f"ConfigMap {namespace}/{name}"
    try:
        config_map = await kube_client.CoreV1Api(kube.api).read_namespaced_config_map(
            name, namespace
        )
    except ApiException as error:
        if error.status == 404:
            raise EvalGateError(f"{where} does not exist") from None
        if error.status == 403:
            raise EvalGateError(f"not allowed to read {where} (RBAC: get configmaps)") from None
        raise EvalGateError(f"cannot read {where}: HTTP {error.status} {error.reason}") from None
    except (TimeoutError, OSError) as error:
        raise EvalGateError(f"cannot read {where}: {error}") from None
    data = config_map.data or {}
    if key not in data:
        keys = ", ".join(sorted(data)) or "none"
        raise EvalGateError(f"{where} has no key {key!r} (keys: {keys})")
    try:
        return parse_evalset(data[key])
    except EvalSetError as error:
        problems = "; ".join(error.problems[:5])
        raise EvalGateError(f"the eval set in {where} key {key!r} is invalid: {problems}") from None


def _shown(url: str) -> str:
    """`url` without credentials or query, as it may appear in status and Events."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "SERVICE_URL"
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


def _headers(target: EvalTarget) -> dict[str, str]:
    return {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}


async def _wait_served(
    http: httpx.AsyncClient, target: EvalTarget, prompt: str, versions: Sequence[str], bound: float
) -> None:
    """Until the service lists every one of `versions` (none Invalid), at most `bound` s."""
    url = f"{target.service_url.rstrip('/')}/v1/prompts"
    deadline = time.monotonic() + bound
    while True:
        try:
            response = await http.get(url, headers=_headers(target), timeout=10)
            response.raise_for_status()
            items = [i for i in response.json()["items"] if i.get("prompt") == prompt]
            loaded = {str(i.get("version")): i for i in items}
            missing = [v for v in versions if v not in loaded]
            invalid = [v for v in versions if loaded.get(v, {}).get("phase") == "Invalid"]
            if invalid:
                raise EvalGateError(f"the service cannot serve {prompt} {invalid[0]}: Invalid")
            if not missing:
                return
            problem = (
                f"the service at {_shown(target.service_url)} does not serve {prompt} "
                f"{', '.join(missing)} (loaded: {', '.join(sorted(loaded)) or 'none'})"
            )
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            why = str(error) or type(error).__name__
            problem = f"the service at {_shown(target.service_url)} cannot be reached: {why}"
        if time.monotonic() + _POLL_SECONDS > deadline:
            raise EvalGateError(f"{problem}, after waiting {bound:g} s")
        await asyncio.sleep(_POLL_SECONDS)


async def call_service(
    http: httpx.AsyncClient, target: EvalTarget, prompt: str, case: EvalCase, version: str
) -> dict[str, Any]:
    """The answer body for `case` on the pinned `version`, or a problem body (`status`...)."""
    body = build_answer_body(prompt, case, version)
    url = f"{target.service_url.rstrip('/')}/v1/answers"
    try:
        response = await http.post(url, json=body, headers=_headers(target), timeout=60)
    except httpx.HTTPError as error:
        return read_no_response(error)
    return read_answer(response.status_code, response.text)


async def _run_cases(
    http: httpx.AsyncClient, target: EvalTarget, evalset: EvalSet, versions: Sequence[str]
) -> dict[str, list[CaseResult]]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(case: EvalCase, version: str) -> CaseResult:
        async with gate:
            response = await call_service(http, target, evalset.prompt, case, version)
        run = score_run(case, response, {})
        return CaseResult(case_id=case.id, question=case.question, weight=case.weight, runs=[run])

    results: dict[str, list[CaseResult]] = {}
    for version in versions:
        results[version] = list(await asyncio.gather(*(one(c, version) for c in evalset.cases)))
    return results


async def _evaluate(
    kube: KubeSession, http: httpx.AsyncClient, target: EvalTarget, call: EvalCall
) -> tuple[EvalOutcome, str | None]:
    gate = call.gate
    evalset = await fetch_evalset(kube, target.namespace, gate.config_map, gate.key)
    problem = assess_evalset(evalset, call.prompt)
    if problem is not None:
        raise EvalGateError(problem)
    versions = [call.candidate] + ([call.baseline] if call.baseline else [])
    await _wait_served(http, target, call.prompt, versions, gate.timeout_seconds / 3)
    results = await _run_cases(http, target, evalset, versions)
    return build_eval_outcome(call, evalset, results, _shown(target.service_url))


async def _write_report(kube: KubeSession, target: EvalTarget, call: EvalCall, report: str) -> str:
    """Create or replace the report ConfigMap; its name."""
    body = build_report_configmap(call, report, target.owner_uid)
    name = str(body["metadata"]["name"])
    api = kube_client.CoreV1Api(kube.api)
    try:
        await api.create_namespaced_config_map(target.namespace, body)  # type: ignore[arg-type]
    except ApiException as error:
        if error.status != 409:
            raise
        await api.replace_namespaced_config_map(name, target.namespace, body)  # type: ignore[arg-type]
    return name


async def run_eval_gate(
    kube: KubeSession, http: httpx.AsyncClient, target: EvalTarget, call: EvalCall
) -> EvalOutcome:
    """Run `call`'s eval gate; a failed outcome names any problem (never raises)."""
    seconds = call.gate.timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            outcome, report = await _evaluate(kube, http, target, call)
    except TimeoutError:
        return EvalOutcome(False, f"the eval run did not finish within timeoutSeconds {seconds}")
    except EvalGateError as error:
        return EvalOutcome(False, str(error))
    if report is None:
        return outcome
    try:
        async with asyncio.timeout(10):
            name = await _write_report(kube, target, call, report)
    except (ApiException, OSError, TimeoutError) as error:
        why = f"HTTP {error.status}" if isinstance(error, ApiException) else str(error)
        note = ("Warning", "EvalReportNotWritten", f"the report ConfigMap: {why}")
        return replace(outcome, notes=(*outcome.notes, note))
    return replace(outcome, report=name)
