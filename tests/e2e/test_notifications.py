"""Notifications end to end: the controller (kopf subprocess) announces a rollout that rolls
back to a real receiver on 127.0.0.1 that fails its first two requests and checks every
signature (stack: tests/e2e/conftest.py).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from rehearsal.notify_receiver import NotificationReceiver, ReceivedNotification
from tests.e2e.test_rollouts import LONG_STEPS, MakeRollout
from tests.support.rollout_harness import CANARY_MODEL, ControllerProcess, LoadDriver

pytestmark = pytest.mark.integration
SECRET = "e2e-notify-secret"


def _mine(receiver: NotificationReceiver, prompt: str) -> list[ReceivedNotification]:
    return [r for r in receiver.received if (r.event or {}).get("prompt") == prompt]


def _wait_for(receiver: NotificationReceiver, prompt: str, phases: list[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        delivered = [r.event["phase"] for r in _mine(receiver, prompt) if r.status == 200]
        if delivered[: len(phases)] == phases or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def test_a_rollback_is_announced_once_per_transition_signed(
    prompt_rollout: MakeRollout, controller: ControllerProcess, fake_model: str
) -> None:
    rollout = prompt_rollout("faq-notify")
    with NotificationReceiver(SECRET, statuses=[503, 503]) as receiver:
        controller.restart(
            NOTIFY_WEBHOOK_URLS=receiver.url,
            NOTIFY_SECRET=SECRET,
            NOTIFY_BACKOFF_SECONDS="0.2",
            NOTIFY_DASHBOARD_URL="https://grafana.example/d/p?var-prompt={prompt}&v={version}",
        )
        try:
            rollout.apply(rollout.version("1.0.0"))
            rollout.wait_phase("1.0.0", "Stable", 60)
            with LoadDriver(rollout.service, rollout.prompt):
                rollout.apply(rollout.version("1.1.0", model=CANARY_MODEL, steps=LONG_STEPS))
                rollout.wait_phase("1.1.0", "Progressing")
                faults = {"models": [CANARY_MODEL], "status": 503}
                httpx.post(f"{fake_model}/admin/faults", json=faults, timeout=10).raise_for_status()
                rollout.wait_phase("1.1.0", "RolledBack", 30)
            _wait_for(receiver, rollout.prompt, ["Stable", "Progressing", "RolledBack"])
            time.sleep(2)  # two more ticks: nothing is announced again
        finally:
            controller.restart()
        got = _mine(receiver, rollout.prompt)
    assert all(r.verified for r in got), [r.to_json() for r in got]
    delivered = [r.event for r in got if r.status == 200]
    assert [(e["version"], e["previousPhase"], e["phase"]) for e in delivered] == [
        ("1.0.0", "Pending", "Stable"),
        ("1.1.0", "Pending", "Progressing"),
        ("1.1.0", "Progressing", "RolledBack"),
    ]
    # The first event was refused twice and retried: the same bytes, three times.
    assert [r.status for r in got[:3]] == [503, 503, 200]
    assert len({r.body for r in got[:3]}) == 1
    assert len({e["id"] for e in delivered}) == 3
    rolled_back: dict[str, Any] = delivered[2]
    assert (
        rolled_back["reason"].startswith("rolled back:") and "error rate" in rolled_back["reason"]
    )
    assert rolled_back["analysis"]["verdict"] == "Failed"
    assert rolled_back["links"]["dashboard"] == (
        "https://grafana.example/d/p?var-prompt=faq-notify&v=1.1.0"
    )
