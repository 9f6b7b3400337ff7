"""The kopf operator: thin handlers around the pure state machine.

Run with ``kopf run --all-namespaces -m controller.operator`` (add ``--standalone``
without peering, or ``--peering=prompt-rollouts`` so two replicas never both act).

Every tick, for each prompt, the object of its newest version acts for the whole
prompt: observe (the index of all its versions) → measure (Prometheus, only when the
canary's analysis is due) → decide (pure) → apply (one status merge patch per changed
object, plus Events). All state lives in ``status``: a restarted controller carries on
where the last one stopped.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import kopf
from prometheus_client import start_http_server

from api.client import KubeError, PromptVersionClient, open_session
from api.v1alpha1 import GROUP, VERSION, Phase
from controller.analysis import Assessment, assess
from controller.eval_gate import EvalCall, EvalOutcome
from controller.eval_runner import EvalTarget, run_eval_gate
from controller.gates import GateOutcome, build_notice_changes, build_notices
from controller.metrics import ControllerMetrics
from controller.notify import build_notifier, submit_transition
from controller.notify_events import Transition, decide_transitions
from controller.prometheus import PrometheusClient, fetch_measurement
from controller.rollout import AnalysisTarget, Change, decide_analysis, decide_with_evals
from controller.settings import ControllerSettings
from controller.shadow import SHADOW, build_shadow_analysis, step_mode
from controller.versions import UnreadableVersion, VersionView
from controller.views import build_views, choose_actor
from controller.webhooks import call_webhooks

__all__: list[str] = []

PLURAL = "promptversions"
#: Read once at import: kopf fixes timer intervals when handlers are registered.
_TICK = ControllerSettings().controller_tick_seconds
_log = logging.getLogger(__name__)
#: Rounds of calls in one decision: confirm-rollout, pre-rollout, the eval gate,
#: confirm-promotion, and the decision that uses them all.
_GATE_ROUNDS = 5
#: Phases that end a rollout, counted in promptrollouts_rollouts_total.
_ENDED = frozenset({Phase.PROMOTED, Phase.ROLLED_BACK, Phase.ABORTED, Phase.SUPERSEDED})


@kopf.on.startup(id="configure")
async def configure(*, settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Clients, metrics and kopf settings, once per process."""
    config = ControllerSettings()
    # kopf's own progress goes to annotations: a real API server prunes status.kopf.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix="promptrollouts.io"
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="promptrollouts.io", key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    # One line per timer run and per API call is noise at a 1 s tick; transitions are logged.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Peering (--peering=NAME) elects the replica with the highest priority; equal
    # priorities would freeze them all, so each replica draws its own unless told.
    if settings.peering.priority == 0:
        settings.peering.priority = config.controller_priority or secrets.randbelow(10_000) + 1
    memo.settings = config
    memo.http = httpx.AsyncClient()
    memo.kube = await open_session()
    memo.prometheus = PrometheusClient(
        memo.http, config.prometheus_url, config.prometheus_timeout_seconds
    )
    memo.metrics = ControllerMetrics()
    memo.notifier = build_notifier(config, memo.metrics)
    memo.notifier.start()
    memo.webhook_secret = (
        config.webhook_secret.get_secret_value() if config.webhook_secret is not None else None
    )
    if memo.webhook_secret is None:
        _log.warning("WEBHOOK_SECRET is not set: webhook calls are sent unsigned")
    memo.locks = {}
    memo.servable = {}  # check_servable verdicts by (uid, generation)
    if config.controller_metrics_port:
        start_http_server(
            config.controller_metrics_port, config.controller_metrics_host, memo.metrics.registry
        )


@kopf.on.cleanup(id="close")
async def close(*, memo: kopf.Memo, **_: Any) -> None:
    """Let queued notifications go out (briefly), then close the clients."""
    await memo.notifier.stop()
    await memo.http.aclose()
    await memo.kube.close()


@kopf.index(GROUP, VERSION, PLURAL, id="by_prompt")
def by_prompt(
    *, body: kopf.Body, namespace: str | None, spec: kopf.Spec, **_: Any
) -> dict[Any, Any]:
    """Every PromptVersion, grouped by (namespace, prompt)."""
    return {(namespace, spec.get("prompt")): body}


@kopf.timer(GROUP, VERSION, PLURAL, id="reconcile", interval=_TICK, sharp=True)
async def reconcile(
    *,
    body: kopf.Body,
    namespace: str | None,
    spec: kopf.Spec,
    memo: kopf.Memo,
    by_prompt: kopf.Index[Any, Any] | None = None,
    **_: Any,
) -> None:
    """Reconcile this object's prompt, if this object acts for it this tick."""
    key = (namespace, spec.get("prompt"))
    bodies = list(by_prompt.get(key, [])) if by_prompt is not None else [body]
    if choose_actor(bodies) != body.get("metadata", {}).get("name"):
        return
    lock = memo.locks.setdefault(key, asyncio.Lock())
    async with lock:
        await _reconcile_prompt(namespace, str(key[1]), bodies, memo)


async def _reconcile_prompt(
    namespace: str | None, prompt: str, bodies: list[kopf.Body], memo: kopf.Memo
) -> None:
    """Observe → measure (when told to) → decide (pure) → one status patch per changed object."""
    now = datetime.now(UTC)
    by_name = {str(b["metadata"]["name"]): b for b in bodies}
    views, unreadable = build_views(bodies, memo.servable)
    assessment = await _analyse(prompt, decide_analysis(views, now), now, memo)
    changes = await _decide(views, assessment, now, unreadable, memo, (namespace, by_name))
    transitions = decide_transitions(views, unreadable, changes, now)
    client = PromptVersionClient(memo.kube, namespace)
    await _apply(prompt, namespace, changes, by_name, client, memo, transitions)
    notices = build_notices(views, changes)
    if notices:  # post-rollout and rollback webhooks: after the change is written
        outcomes = await call_webhooks(memo.http, notices, memo.webhook_secret)
        now = datetime.now(UTC)
        notice_changes = build_notice_changes(views, changes, outcomes, now)
        await _apply(prompt, namespace, notice_changes, by_name, client, memo, {})


async def _decide(
    views: list[VersionView],
    assessment: Assessment | None,
    now: datetime,
    unreadable: list[UnreadableVersion],
    memo: kopf.Memo,
    where: tuple[str | None, Mapping[str, kopf.Body]],
) -> list[Change]:
    """Decide; while the decision asks for webhooks or eval runs, make them (bounded) and
    decide again with their outcomes."""
    results: dict[tuple[str, str], GateOutcome] = {}
    evals: dict[str, EvalOutcome] = {}
    for _ in range(_GATE_ROUNDS):
        changes, calls, eval_calls = decide_with_evals(
            views, assessment, now, unreadable, results, evals
        )
        if not calls and not eval_calls:
            break
        for call, outcome in await call_webhooks(memo.http, calls, memo.webhook_secret):
            results[(call.name, call.hook.name)] = outcome
            _log.info("webhook %s of %s: %s", call.hook.name, call.name, outcome.message)
        for eval_call in eval_calls:
            evals[eval_call.name] = await _run_eval(eval_call, where, memo)
        if eval_calls:  # a run takes seconds: the next step starts when it ends
            now = datetime.now(UTC)
    return changes


async def _run_eval(
    call: EvalCall, where: tuple[str | None, Mapping[str, kopf.Body]], memo: kopf.Memo
) -> EvalOutcome:
    """One eval gate run (bounded by its timeoutSeconds), logged."""
    config: ControllerSettings = memo.settings
    if not config.service_url:
        outcome = EvalOutcome(False, "SERVICE_URL is not set: the controller cannot run eval gates")
    else:
        namespace, by_name = where
        metadata = by_name[call.name].get("metadata") if call.name in by_name else None
        key = config.service_api_key
        target = EvalTarget(
            service_url=config.service_url,
            namespace=namespace or memo.kube.namespace,
            owner_uid=str(metadata["uid"]) if metadata and metadata.get("uid") else None,
            api_key=key.get_secret_value() if key is not None else None,
        )
        outcome = await run_eval_gate(memo.kube, memo.http, target, call)
    verdict = "passed" if outcome.passed else "failed"
    _log.info("eval gate of %s %s: %s (%s)", call.prompt, call.candidate, verdict, outcome.reason)
    return outcome


async def _apply(
    prompt: str,
    namespace: str | None,
    changes: list[Change],
    by_name: Mapping[str, kopf.Body],
    client: PromptVersionClient,
    memo: kopf.Memo,
    transitions: Mapping[str, Transition],
) -> None:
    """One status merge patch per changed object, then its notification and Events."""
    for change in changes:
        patch = change.status.to_merge_patch()
        try:
            if patch:
                await client.patch_status(change.name, patch)
        except KubeError as error:
            memo.metrics.reconcile_errors.labels(prompt).inc()
            raise kopf.TemporaryError(f"status patch of {change.name}: {error}", delay=1) from error
        if change.name in transitions:
            submit_transition(
                memo.notifier,
                transitions[change.name],
                by_name[change.name],
                prompt=prompt,
                namespace=namespace,
                dashboard_template=memo.settings.notify_dashboard_url,
            )
        for kind, reason, message in change.events:
            kopf.event(by_name[change.name], type=kind, reason=reason, message=message)
        _count(prompt, by_name[change.name], change, memo.metrics)


async def _analyse(
    prompt: str, target: AnalysisTarget | None, now: datetime, memo: kopf.Memo
) -> Assessment | None:
    """Measure and assess the canary `decide_analysis` chose; None when nothing is due."""
    if target is None:
        return None
    canary, stable = target.canary, target.stable
    mode = step_mode(canary)
    analysis = canary.spec.rollout.analysis
    if mode == SHADOW:
        analysis = build_shadow_analysis(analysis)
    measurement = await fetch_measurement(
        memo.prometheus,
        prompt,
        canary.spec.version,
        stable.spec.version if stable else None,
        analysis,
        # One instant for every query: a rate's two counts come from the same samples.
        now.timestamp(),
        mode,
    )
    assessment = assess(analysis, measurement)
    memo.metrics.analyses.labels(prompt, canary.spec.version, assessment.verdict.value).inc()
    _log.info(
        "analysis of %s %s: %s (%s)",
        prompt,
        canary.spec.version,
        assessment.verdict.value,
        "; ".join(assessment.reasons),
    )
    return assessment


def _count(
    prompt: str, body: Mapping[str, Any], change: Change, metrics: ControllerMetrics
) -> None:
    version = str((body.get("spec") or {}).get("version"))
    if change.status.weight is not None:
        metrics.weight.labels(prompt, version).set(change.status.weight)
    phase = change.status.phase
    if phase in _ENDED:
        metrics.rollouts.labels(prompt, phase.value).inc()
