"""The eval gate against real parts: the eval set in a ConfigMap of the emulator, the
service over HTTP in cluster mode, the fake model behind it.

The runner tests call `run_eval_gate` as the operator does (every failure a clear reason,
never a pass); the end-to-end test lets the controller run it before any traffic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml

from api.client import KubeSession, open_session
from api.v1alpha1 import EvalGate
from controller.eval_gate import EvalCall, EvalOutcome
from controller.eval_runner import EvalTarget, run_eval_gate
from tests.support.kube import KubeCluster
from tests.support.rollout_harness import (
    CANARY_MODEL,
    QUESTION,
    USER_TEMPLATE,
    PromptRollout,
    build_version,
    closed_port_url,
    object_name,
    poll,
)

pytestmark = pytest.mark.integration

#: The canary that regresses: its context says ten days, the eval set wants five.
BAD_TEMPLATE = USER_TEMPLATE.replace("five days", "ten days")


def build_evalset(prompt: str) -> str:
    cases = [
        {"id": "refund-time", "question": QUESTION, "expect": {"contains_any": ["five days"]}},
        {"id": "answers", "question": QUESTION, "expect": {"outcome": "answered"}},
    ]
    return yaml.safe_dump({"prompt": prompt, "cases": cases})


def apply_configmap(kube: KubeCluster, name: str, data: dict[str, str]) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    result = kube.kubectl("apply", "--validate=false", "-f", "-", input=yaml.safe_dump(body))
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def versions(kube: KubeCluster, service: str) -> Iterator[str]:
    """Prompt `faq-evalrun`: 1.0.0 and 1.1.0 answer five days, 1.2.0 ten, 1.3.0 on the
    canary model; the service serves them all (pinned)."""
    prompt = "faq-evalrun"
    manifests = [
        build_version(prompt, "1.0.0"),
        build_version(prompt, "1.1.0"),
        build_version(prompt, "1.2.0", user_template=BAD_TEMPLATE),
        build_version(prompt, "1.3.0", model=CANARY_MODEL),
    ]
    result = kube.kubectl(
        "apply", "--validate=false", "-f", "-", input=yaml.safe_dump_all(manifests)
    )
    assert result.returncode == 0, result.stderr
    apply_configmap(kube, "faq-evalrun-evals", {"evalset.yaml": build_evalset(prompt)})

    def loaded() -> bool | None:
        items = httpx.get(f"{service}/v1/prompts", timeout=10).json()["items"]
        return len([i for i in items if i["prompt"] == prompt]) == 4 or None

    poll(loaded, 20, "the service to load faq-evalrun's four versions")
    yield prompt
    kube.kubectl("delete", "pver", "-l", f"promptrollouts.io/prompt={prompt}", "--wait=false")


@pytest_asyncio.fixture
async def session(kube: KubeCluster) -> AsyncIterator[KubeSession]:
    async with await open_session(kube.kubeconfig) as opened:
        yield opened


async def run(
    session: KubeSession,
    service: str,
    candidate: str,
    baseline: str | None = "1.0.0",
    **gate: Any,
) -> EvalOutcome:
    spec = EvalGate.model_validate({"configMap": "faq-evalrun-evals", **gate})
    call = EvalCall(object_name("faq-evalrun", candidate), "faq-evalrun", candidate, baseline, spec)
    async with httpx.AsyncClient() as http:
        return await run_eval_gate(session, http, EvalTarget(service, "default"), call)


@pytest.mark.asyncio
async def test_a_good_canary_passes_and_its_report_is_kept(
    kube: KubeCluster, service: str, versions: str, session: KubeSession
) -> None:
    outcome = await run(session, service, "1.1.0")
    assert outcome.passed, outcome.reason
    assert outcome.summary == "1.1.0 passes 2/2 (100%), stable 1.0.0 2/2 (100%)"
    assert outcome.report == "faq-evalrun-1-1-0-eval-report"
    stored = kube.get("default", outcome.report, "v1/configmaps")
    assert stored["data"]["report.md"].startswith("# Eval: faq-evalrun 1.0.0 → 1.1.0")
    again = await run(session, service, "1.1.0")  # a second run replaces the report
    assert again.passed and again.report == outcome.report


@pytest.mark.asyncio
async def test_a_regression_fails_naming_the_case(
    service: str, versions: str, session: KubeSession
) -> None:
    outcome = await run(session, service, "1.2.0", minPassRate=0.5)
    assert not outcome.passed
    assert outcome.reason == "1 regression(s) (refund-time)"
    assert outcome.regressions == ("refund-time",)
    assert (outcome.pass_rate, outcome.baseline_pass_rate) == (0.5, 1.0)


@pytest.mark.asyncio
async def test_a_pass_rate_under_the_minimum_fails_without_a_stable_version(
    service: str, versions: str, session: KubeSession
) -> None:
    outcome = await run(session, service, "1.2.0", baseline=None, minPassRate=0.75)
    assert not outcome.passed
    assert outcome.reason == "pass rate 50% is under minPassRate 75%"


JUDGED = yaml.safe_dump(
    {
        "prompt": "faq-evalrun",
        "cases": [{"id": "j", "question": "q", "expect": {"llm_rubric": {"rubric": "polite"}}}],
    }
)


@pytest.mark.parametrize(
    ("configmap", "data", "reason"),
    [
        (None, None, "ConfigMap default/faq-evalrun-evals-missing does not exist"),
        ("faq-evalrun-evals-nokey", {"other.yaml": "x"}, "has no key 'evalset.yaml'"),
        ("faq-evalrun-evals-bad", {"evalset.yaml": "prompt: [unclosed"}, "not valid YAML"),
        (
            "faq-evalrun-evals-empty",
            {"evalset.yaml": "prompt: faq-evalrun\ncases: []\n"},
            "cases: List should have at least 1 item",
        ),
        (
            "faq-evalrun-evals-judge",
            {"evalset.yaml": JUDGED},
            "the eval set uses llm_rubric, which the controller cannot grade",
        ),
    ],
    ids=["missing-configmap", "missing-key", "bad-yaml", "no-cases", "unsupported-grader"],
)
@pytest.mark.asyncio
async def test_an_eval_set_that_cannot_run_fails_the_gate(
    kube: KubeCluster,
    service: str,
    versions: str,
    session: KubeSession,
    configmap: str | None,
    data: dict[str, str] | None,
    reason: str,
) -> None:
    name = configmap or "faq-evalrun-evals-missing"
    if data is not None:
        apply_configmap(kube, name, data)
    spec = EvalGate(config_map=name)
    call = EvalCall(object_name(versions, "1.1.0"), versions, "1.1.0", "1.0.0", spec)
    async with httpx.AsyncClient() as http:
        outcome = await run_eval_gate(session, http, EvalTarget(service, "default"), call)
    assert not outcome.passed
    assert reason in outcome.reason


@pytest.mark.asyncio
async def test_a_service_that_cannot_be_reached_fails_the_gate(
    versions: str, session: KubeSession
) -> None:
    down = closed_port_url()
    outcome = await run(session, down, "1.1.0", timeoutSeconds=10)
    assert not outcome.passed
    assert outcome.reason.startswith(f"the service at {down} cannot be reached: ")
    assert outcome.reason.endswith("after waiting 3.33333 s")


@pytest.mark.asyncio
async def test_a_version_the_service_does_not_serve_fails_the_gate(
    service: str, versions: str, session: KubeSession
) -> None:
    outcome = await run(session, service, "9.9.9", timeoutSeconds=10)
    assert not outcome.passed
    assert "does not serve faq-evalrun 9.9.9 (loaded: 1.0.0, 1.1.0, 1.2.0, 1.3.0)" in outcome.reason


@pytest.mark.asyncio
async def test_a_canary_that_answers_nothing_evaluated_nothing(
    fake_model: str, service: str, versions: str, session: KubeSession
) -> None:
    faults = {"models": [CANARY_MODEL], "status": 503}
    async with httpx.AsyncClient(base_url=fake_model, timeout=10) as admin:
        (await admin.post("/admin/faults", json=faults)).raise_for_status()
        try:
            outcome = await run(session, service, "1.3.0")
        finally:
            (await admin.delete("/admin/faults")).raise_for_status()
    assert not outcome.passed
    assert outcome.reason.startswith(
        "nothing could be evaluated on version 1.3.0: every request failed (first: HTTP 50"
    )


# --- the controller runs it before any traffic ---------------------------------------------


def test_the_controller_gates_a_canary_on_its_eval_set(
    prompt_rollout: Callable[[str], PromptRollout], kube: KubeCluster
) -> None:
    rollout = prompt_rollout("faq-evalgate")
    apply_configmap(kube, "faq-evalgate-evals", {"evalset.yaml": build_evalset(rollout.prompt)})
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    gate = {"configMap": "faq-evalgate-evals", "minPassRate": 1.0, "timeoutSeconds": 60}

    good = rollout.version("1.1.0")
    good["spec"]["rollout"]["evalGate"] = gate
    rollout.apply(good)
    started = rollout.wait_phase("1.1.0", "Progressing", 45)
    assert started["evalGate"]["result"] == "Passed", started["evalGate"]
    assert started["evalGate"]["baseline"] == "1.0.0"

    bad = rollout.version("1.2.0", user_template=BAD_TEMPLATE)
    bad["spec"]["rollout"]["evalGate"] = gate
    rollout.apply(bad)
    stopped = rollout.wait_phase("1.2.0", "Aborted", 45)
    assert stopped["weight"] == 0
    assert stopped["message"].startswith("stopped by the eval gate: 1 regression(s) (refund-time)")
    degraded = next(c for c in stopped["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"
    assert stopped["evalGate"]["result"] == "Failed"
    assert stopped["evalGate"]["regressions"] == ["refund-time"]
    report = kube.get("default", stopped["evalGate"]["report"], "v1/configmaps")
    assert "regression" in report["data"]["report.md"]
    rollout.wait_events(
        "1.2.0", lambda es: any(r == "EvalGateFailed" for _, r, _ in es), "to show the failure"
    )
    # It never got traffic; the good canary carries on.
    assert rollout.served()["1.2.0"][1] == 0
    assert rollout.status("1.1.0")["phase"] in ("Progressing", "Promoted")
