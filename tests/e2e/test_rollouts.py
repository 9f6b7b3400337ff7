"""Rollouts end to end: kubectl → controller (kopf subprocess) → service → fake model →
Prometheus → controller, on one session-scoped stack (tests/e2e/conftest.py).

Each test rolls out its own prompt (``faq-<scenario>``): stable 1.0.0 on ``gpt-4o-mini``,
canaries on ``gpt-4.1-nano`` (no fallbacks), so a fault injected on the canary's model hits
the canary alone. Rollouts are fast: steps of 2 s, analysis every 1 s over a 5 s window.
Where a race between a step's pause and the analysis would make a test flaky, the pauses are
60 s or `manual`, so only the analysis (or a human) can move the canary.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support.rollout_harness import (
    CANARY_MODEL,
    ControllerProcess,
    LoadDriver,
    PromptRollout,
    closed_port_url,
)

pytestmark = pytest.mark.integration

MakeRollout = Callable[[str], PromptRollout]


def _progress(status: dict[str, Any]) -> tuple[Any, ...]:
    return (status.get("phase"), status.get("stepIndex"), status.get("weight"))


def _reasons(events: list[tuple[str, str, str]]) -> list[str]:
    return [reason for _, reason, _ in events]


def _with(*reasons: str) -> Callable[[list[tuple[str, str, str]]], bool]:
    """An Events check: every one of `reasons` is among them."""
    return lambda events: set(reasons) <= set(_reasons(events))


def test_a_healthy_canary_is_promoted_through_every_step(prompt_rollout: MakeRollout) -> None:
    rollout = prompt_rollout("faq-healthy")
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    with LoadDriver(rollout.service, rollout.prompt) as load, ThreadPoolExecutor(1) as pool:
        rollout.apply(rollout.version("1.1.0", model=CANARY_MODEL))
        waiting = pool.submit(
            rollout.kube.kubectl,
            "wait",
            "--for=condition=Promoted",
            f"pver/{rollout.name('1.1.0')}",
            "--timeout=60s",
            timeout=70,
        )
        seen: list[tuple[Any, ...]] = []

        def promoted(status: dict[str, Any]) -> bool:
            if not seen or seen[-1] != _progress(status):
                seen.append(_progress(status))
            return status.get("phase") == "Promoted"

        rollout.wait("1.1.0", promoted, 60, "to be promoted")
        waited = waiting.result(timeout=70)
    assert waited.returncode == 0, waited.stderr
    assert "condition met" in waited.stdout
    steps = [s for s in seen if s[0] is not None and s[0] != "Pending"]
    assert steps == [("Progressing", 0, 20), ("Progressing", 1, 50), ("Promoted", 2, 100)]
    analysis = rollout.status("1.1.0")["lastAnalysis"]  # the one that promoted it
    assert analysis["verdict"] == "Successful", analysis
    assert analysis["values"]["canary"]["requests"] >= 5, analysis
    stable = rollout.status("1.0.0")
    assert (stable["phase"], stable["weight"]) == ("Superseded", 0)
    rollout.wait_events("1.1.0", _with("Progressing", "StepAdvanced", "Promoted"), "to show it")
    rollout.wait_events("1.0.0", _with("Superseded"), "to show it was superseded")
    rollout.wait_served({"1.0.0": 0, "1.1.0": 100})
    assert load.versions()["1.1.0"] > 0, load.counts()


# --- automatic rollback -----------------------------------------------------------------------

#: Steps no pause can end within a test: only the analysis moves these canaries.
LONG_STEPS = [{"weight": 20, "pause": "60s"}, {"weight": 50, "pause": "60s"}]
MANUAL_STEPS = [{"weight": 20, "pause": "manual"}, {"weight": 50, "pause": "manual"}]


def _inject(fake_model: str, **faults: Any) -> None:
    httpx.post(f"{fake_model}/admin/faults", json=faults, timeout=10).raise_for_status()


def _verdict(status: dict[str, Any]) -> str | None:
    return (status.get("lastAnalysis") or {}).get("verdict")


def _break_a_healthy_canary(
    rollout: PromptRollout, fake_model: str, **faults: Any
) -> tuple[dict[str, Any], float]:
    """Canary at 20% under load, analysed healthy; inject `faults` on its model; wait for 0%.

    Returns the canary's status at 0% and the seconds from the injection to it.
    """
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    with LoadDriver(rollout.service, rollout.prompt) as load:
        rollout.apply(rollout.version("1.1.0", model=CANARY_MODEL, steps=LONG_STEPS))
        rollout.wait("1.1.0", lambda s: _verdict(s) == "Successful", 30, "a passing analysis")
        assert load.versions()["1.1.0"] > 0, load.counts()
        _inject(fake_model, models=[CANARY_MODEL], **faults)
        injected = time.monotonic()
        status = rollout.wait("1.1.0", lambda s: s.get("weight") == 0, 30, "to drop to 0%")
        elapsed = time.monotonic() - injected
        rollout.wait("1.0.0", lambda s: s.get("weight") == 100, 10, "to take 100% back")
        rollout.wait_served({"1.0.0": 100, "1.1.0": 0})
        settled = time.monotonic()
        time.sleep(0.5)
    assert set(load.versions(settled)) == {"1.0.0"}, load.counts(settled)
    return status, elapsed


def test_a_canary_whose_model_fails_is_rolled_back_then_retried(
    prompt_rollout: MakeRollout, fake_model: str, record_property: Callable[[str, object], None]
) -> None:
    rollout = prompt_rollout("faq-errors")
    status, elapsed = _break_a_healthy_canary(rollout, fake_model, status=503)
    line = f"time-to-rollback: {elapsed:.1f} s"
    print(line, flush=True)
    record_property("time_to_rollback", line)
    assert status["phase"] == "RolledBack", rollout.describe()
    assert "error rate" in status["message"], status["message"]
    assert status["consecutiveFailures"] == 2
    assert elapsed < 30
    rollout.wait_events(
        "1.1.0",
        lambda es: _reasons(es).count("AnalysisFailed") >= 2 and "RolledBack" in _reasons(es),
        "to show two failed analyses and the rollback",
    )

    # retry: the version goes back to its first step, counters cleared.
    httpx.delete(f"{fake_model}/admin/faults", timeout=10).raise_for_status()
    raw = rollout.request("1.1.0", "retry")
    retried = rollout.wait("1.1.0", lambda s: s.get("handledRequest") == raw, 15, "retried")
    assert _progress(retried) == ("Progressing", 0, 20)
    assert (retried["consecutiveFailures"], retried["consecutiveErrors"]) == (0, 0)
    rollout.wait("1.0.0", lambda s: s.get("weight") == 80, 10, "to give 20% again")


def test_a_canary_slower_than_its_threshold_is_rolled_back(
    prompt_rollout: MakeRollout, fake_model: str
) -> None:
    rollout = prompt_rollout("faq-slow")
    status, elapsed = _break_a_healthy_canary(rollout, fake_model, latency_ms=4000)
    assert status["phase"] == "RolledBack", rollout.describe()
    assert "p95 latency" in status["message"], status["message"]
    assert elapsed < 30


def test_a_canary_without_traffic_is_inconclusive_and_stays_put(
    prompt_rollout: MakeRollout,
) -> None:
    rollout = prompt_rollout("faq-quiet")
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    rollout.apply(rollout.version("1.1.0", model=CANARY_MODEL))
    rollout.wait("1.1.0", lambda s: _verdict(s) == "Inconclusive", 15, "an inconclusive analysis")
    # Long past the 2 s pause: a passing analysis would have moved it on by then.
    seen: set[tuple[Any, ...]] = set()
    analyses: set[str] = set()

    def record(status: dict[str, Any]) -> bool:
        seen.add((*_progress(status), _verdict(status), status.get("consecutiveFailures")))
        analyses.add(status["lastAnalysis"]["time"])
        return False

    with pytest.raises(TimeoutError):
        rollout.wait("1.1.0", record, 5, "nothing")
    assert seen == {("Progressing", 0, 20, "Inconclusive", 0)}
    assert len(analyses) >= 3  # several intervals, each one inconclusive
    reasons = rollout.status("1.1.0")["lastAnalysis"]["reasons"]
    assert "fewer than minRequests 5" in reasons[0], reasons
    assert rollout.status("1.0.0")["weight"] == 80


def _rolled_back_by_errors(events: list[tuple[str, str, str]]) -> bool:
    """The rollback's own Events are in: its last errored analysis and RolledBack."""
    last_error = any(m.startswith("3/3") for _, r, m in events if r == "AnalysisError")
    return last_error and "RolledBack" in _reasons(events)


def test_prometheus_unavailable_holds_the_weight_then_rolls_back(
    prompt_rollout: MakeRollout, controller: ControllerProcess
) -> None:
    """Mid-rollout, the controller loses Prometheus: it holds 50% for errorLimit-1 analyses.

    Prometheus is shared by the session, so it stays up: the controller is restarted with
    PROMETHEUS_URL on a closed port instead (one controller at a time), and restored after.

    The count of errored analyses is read from the Events the controller posts, one per
    analysis: polling the status can miss a count that lives a fraction of a second (the
    restarted controller's first decision is slow, so its second analysis, due one interval
    after the first one *started*, follows right after the first one is written).
    """
    rollout = prompt_rollout("faq-blind")
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    steps = [{"weight": 20, "pause": "2s"}, {"weight": 50, "pause": "60s"}]
    with LoadDriver(rollout.service, rollout.prompt):
        rollout.apply(rollout.version("1.1.0", model=CANARY_MODEL, steps=steps))
        rollout.wait("1.1.0", lambda s: s.get("stepIndex") == 1, 30, "analysis to pass step 1")
        seen: set[tuple[Any, ...]] = set()

        def rolled_back(status: dict[str, Any]) -> bool:
            seen.add(_progress(status))
            return status.get("phase") == "RolledBack"

        controller.restart(PROMETHEUS_URL=closed_port_url())
        try:
            status = rollout.wait("1.1.0", rolled_back, 30, "to be rolled back")
            # kopf posts Events after the status patch: wait for them before stopping it.
            events = rollout.wait_events("1.1.0", _rolled_back_by_errors, "to show the rollback")
        finally:
            controller.restart()
    # Polling can miss a state, never invent one: every state seen before the rollback held 50%.
    assert seen - {("RolledBack", 1, 0)} == {("Progressing", 1, 50)}, seen
    assert _progress(status)[::2] == ("RolledBack", 0)
    assert status["consecutiveErrors"] == 3
    assert "prometheus" in status["message"], status["message"]
    counts = [message.split(":")[0] for _, reason, message in events if reason == "AnalysisError"]
    assert counts == ["1/3", "2/3", "3/3"], events
    reasons = _reasons(events)
    assert (reasons.count("StepAdvanced"), reasons.count("RolledBack")) == (1, 1), events
    assert "Promoted" not in reasons, events
    rollout.wait("1.0.0", lambda s: s.get("weight") == 100, 10, "to take 100% back")


def test_a_killed_controller_resumes_the_rollout_where_it_was(
    prompt_rollout: MakeRollout, controller: ControllerProcess
) -> None:
    rollout = prompt_rollout("faq-restart")
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    # Step 2's pause outlasts a slow restart (kopf start-up took 8 s on a loaded CI machine),
    # so the restarted controller finds the version still in it.
    steps = [{"weight": 20, "pause": "2s"}, {"weight": 50, "pause": "25s"}]
    with LoadDriver(rollout.service, rollout.prompt):
        rollout.apply(rollout.version("1.1.0", model=CANARY_MODEL, steps=steps))
        rollout.wait("1.1.0", lambda s: s.get("stepIndex") == 1, 30, "to reach step 2")
        time.sleep(2)  # into the step: a restarted pause would show in stepStartedAt
        controller.kill()
        before = rollout.status("1.1.0")
        controller.start()
        last = before["lastAnalysis"]["time"]
        after = rollout.wait(
            "1.1.0",
            lambda s: s["lastAnalysis"]["time"] != last,
            30,
            "the restarted controller to analyse",
        )
        assert _progress(after) == ("Progressing", 1, 50)
        assert after["stepStartedAt"] == before["stepStartedAt"]
        promoted = rollout.wait_phase("1.1.0", "Promoted", 45)
    assert promoted["weight"] == 100
    assert controller.runs >= 2


# --- manual control ---------------------------------------------------------------------------


def _act(rollout: PromptRollout, version: str, action: str) -> dict[str, Any]:
    """Annotate `version` with `action`; its status once the controller handled it."""
    raw = rollout.request(version, action)
    return rollout.wait(version, lambda s: s.get("handledRequest") == raw, 15, f"{action} done")


def test_manual_promote_pause_resume_and_promote_full(prompt_rollout: MakeRollout) -> None:
    rollout = prompt_rollout("faq-manual")
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    rollout.apply(rollout.version("1.1.0", model=CANARY_MODEL, steps=MANUAL_STEPS))
    rollout.wait("1.1.0", lambda s: _progress(s) == ("Progressing", 0, 20), 15, "at step 1")
    assert _progress(_act(rollout, "1.1.0", "promote")) == ("Progressing", 1, 50)
    assert _progress(_act(rollout, "1.1.0", "pause")) == ("Paused", 1, 50)
    assert _progress(_act(rollout, "1.1.0", "resume")) == ("Progressing", 1, 50)
    assert _progress(_act(rollout, "1.1.0", "promote-full")) == ("Promoted", 2, 100)
    rollout.wait_phase("1.0.0", "Superseded")
    rollout.wait_served({"1.0.0": 0, "1.1.0": 100})


def test_manual_abort_then_retry(prompt_rollout: MakeRollout) -> None:
    rollout = prompt_rollout("faq-abort")
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    rollout.apply(rollout.version("1.1.0", model=CANARY_MODEL, steps=MANUAL_STEPS))
    rollout.wait("1.1.0", lambda s: _progress(s) == ("Progressing", 0, 20), 15, "at step 1")
    assert _progress(_act(rollout, "1.1.0", "abort")) == ("Aborted", 0, 0)
    rollout.wait_served({"1.0.0": 100, "1.1.0": 0})
    assert _progress(_act(rollout, "1.1.0", "retry")) == ("Progressing", 0, 20)
    rollout.wait_served({"1.0.0": 80, "1.1.0": 20})


# --- what the service routes ------------------------------------------------------------------


def test_an_invalid_version_is_marked_and_never_served(
    prompt_rollout: MakeRollout, caplog: pytest.LogCaptureFixture
) -> None:
    rollout = prompt_rollout("faq-invalid")
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    undeclared = "CONTEXT:\n[1] (faq.md) Refunds take five days.\n\n{{ tone }}: {{ question }}"
    decreasing = [{"weight": 50, "pause": "2s"}, {"weight": 20, "pause": "2s"}]
    rollout.apply(
        rollout.version("1.1.0", model=CANARY_MODEL, user_template=undeclared),
        rollout.version("1.2.0", model=CANARY_MODEL, steps=decreasing),
    )
    unservable = rollout.wait_phase("1.1.0", "Invalid")
    assert "undeclared variables: tone" in unservable["message"]
    malformed = rollout.wait_phase("1.2.0", "Invalid")
    assert "step weights must strictly increase" in malformed["message"]
    for status in (unservable, malformed):
        assert status["weight"] == 0
        degraded = [c for c in status["conditions"] if c["type"] == "Degraded"]
        assert degraded and degraded[0]["status"] == "True"
    assert _progress(rollout.status("1.0.0"))[::2] == ("Stable", 100)
    rollout.wait_events(
        "1.1.0", lambda es: ("Warning", "Invalid") in [e[:2] for e in es], "to warn Invalid"
    )

    served = rollout.served()
    assert served["1.0.0"] == ("Stable", 100) and served["1.1.0"] == ("Invalid", 0), served
    pinned = rollout.answer("user-1", pinned="1.1.0")
    assert pinned.status_code == 404
    assert "Invalid" in pinned.json()["detail"], pinned.json()
    assert rollout.answer("user-1", pinned="1.2.0").status_code == 404
    with httpx.Client(base_url=rollout.service, timeout=15) as client:
        versions = {
            rollout.answer(f"user-{i}", client=client).headers.get("x-prompt-version")
            for i in range(50)
        }
    assert versions == {"1.0.0"}
    # The service reports a spec it cannot read once, not on every status write it watches.
    ignored = [r for r in caplog.records if "faq-invalid-1-2-0 ignored" in r.getMessage()]
    assert len(ignored) == 1, [r.getMessage() for r in ignored]


def test_routing_is_sticky_per_user_and_splits_by_the_weights(
    prompt_rollout: MakeRollout,
) -> None:
    rollout = prompt_rollout("faq-sticky")
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    steps = [{"weight": 30, "pause": "manual"}, {"weight": 60, "pause": "manual"}]
    rollout.apply(rollout.version("1.1.0", model=CANARY_MODEL, steps=steps))
    rollout.wait_served({"1.0.0": 70, "1.1.0": 30}, timeout=20)
    users = [f"user-{i}" for i in range(400)]

    def versions() -> list[str]:
        with (
            httpx.Client(base_url=rollout.service, timeout=15) as client,
            ThreadPoolExecutor(8) as pool,
        ):
            responses = list(pool.map(lambda user: rollout.answer(user, client=client), users))
        assert {r.status_code for r in responses} == {200}
        return [r.headers["x-prompt-version"] for r in responses]

    first, second = versions(), versions()
    assert first == second  # every user kept their version
    # Binomial(400, 0.3): mean 120, standard deviation 9.2; allow 4 of them.
    canary = first.count("1.1.0")
    assert abs(canary - 120) <= 4 * math.sqrt(400 * 0.3 * 0.7), canary
    assert rollout.status("1.1.0")["phase"] == "Progressing"  # held by its manual pause
