"""Webhook gates end to end: kubectl → controller (kopf subprocess) → a webhook receiver on
127.0.0.1 that verifies every signature → status, Events and the service's routing.

The receiver is the one of tests/support/webhook_receiver.py, keyed with the controller's
WEBHOOK_SECRET (tests/support/rollout_harness.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.rollout_harness import (
    CANARY_MODEL,
    WEBHOOK_SECRET,
    LoadDriver,
    PromptRollout,
)
from tests.support.webhook_receiver import WebhookReceiver, run_webhook_receiver

pytestmark = pytest.mark.integration

MakeRollout = Callable[[str], PromptRollout]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with run_webhook_receiver(WEBHOOK_SECRET) as running:
        yield running


def _with_hooks(manifest: dict[str, Any], *hooks: dict[str, Any]) -> dict[str, Any]:
    manifest["spec"]["rollout"]["webhooks"] = list(hooks)
    return manifest


def _gate(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next((g for g in status.get("gates") or [] if g["name"] == name), {})


def test_confirm_promotion_holds_the_last_step_until_it_says_yes(
    prompt_rollout: MakeRollout, receiver: WebhookReceiver
) -> None:
    rollout = prompt_rollout("faq-gate-promotion")
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    receiver.answer("/sign-off", 403)
    hook = {"name": "sign-off", "type": "confirm-promotion", "url": receiver.url + "/sign-off"}
    told = {"name": "announce", "type": "post-rollout", "url": receiver.url + "/announce"}
    canary = _with_hooks(rollout.version("1.1.0", model=CANARY_MODEL), hook, told)
    with LoadDriver(rollout.service, rollout.prompt):
        rollout.apply(canary)
        held = rollout.wait(
            "1.1.0", lambda s: _gate(s, "sign-off").get("result") == "Failed", 45, "held"
        )
        assert (held["phase"], held["weight"], held["stepIndex"]) == ("Progressing", 50, 1)
        assert held["message"] == "waiting for confirm-promotion webhook 'sign-off': HTTP 403"
        time.sleep(3)  # several passing analyses later: still held at 50 %
        status = rollout.status("1.1.0")
        assert (status["phase"], status["weight"]) == ("Progressing", 50), rollout.describe()
        asked = receiver.received("/sign-off")
        assert len(asked) >= 2  # asked again at each passing analysis
        assert all(r.verified for r in asked)
        assert asked[0].body == {
            "prompt": rollout.prompt,
            "version": "1.1.0",
            "phase": "Progressing",
            "step": 1,
            "type": "confirm-promotion",
            "metadata": {},
        }
        receiver.answer("/sign-off", 200)
        promoted = rollout.wait_phase("1.1.0", "Promoted", 30)
    assert _gate(promoted, "sign-off")["result"] == "Succeeded"
    announced = rollout.wait(
        "1.1.0", lambda s: _gate(s, "announce").get("result") == "Succeeded", 10, "announced"
    )
    [notice] = receiver.received("/announce")  # once, after the promotion
    assert notice.verified
    assert (notice.body["phase"], notice.body["type"]) == ("Promoted", "post-rollout")
    assert announced["phase"] == "Promoted"
    rollout.wait_events(
        "1.1.0",
        lambda es: {"GateHeld", "WebhookSucceeded"} <= {r for _, r, _ in es},
        "to show the held gate and the webhook",
    )


def test_a_failing_pre_rollout_stops_the_version_before_any_traffic(
    prompt_rollout: MakeRollout, receiver: WebhookReceiver
) -> None:
    rollout = prompt_rollout("faq-gate-pre")
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    receiver.answer("/smoke", 500)
    hook = {
        "name": "smoke",
        "type": "pre-rollout",
        "url": receiver.url + "/smoke",
        "timeoutSeconds": 2,
        "metadata": {"suite": "smoke"},
    }
    rollout.apply(_with_hooks(rollout.version("1.1.0", model=CANARY_MODEL), hook))
    stopped = rollout.wait_phase("1.1.0", "Aborted", 30)
    assert stopped["weight"] == 0
    assert stopped["message"].startswith("stopped by pre-rollout webhook 'smoke': HTTP 500 after ")
    degraded = next(c for c in stopped["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"
    assert _gate(stopped, "smoke")["result"] == "Failed"
    assert (rollout.status("1.0.0")["phase"], rollout.status("1.0.0")["weight"]) == ("Stable", 100)
    rollout.wait_served({"1.0.0": 100, "1.1.0": 0})
    calls = receiver.received("/smoke")
    assert len(calls) >= 2 and all(r.verified for r in calls)  # 5xx: retried
    assert calls[0].body["phase"] == "Pending" and calls[0].body["metadata"] == {"suite": "smoke"}
    aborted = ("Warning", "Aborted", stopped["message"])
    rollout.wait_events("1.1.0", lambda es: aborted in es, "to show the abort")


def test_a_hung_webhook_holds_its_version_and_no_other_prompt(
    prompt_rollout: MakeRollout, receiver: WebhookReceiver
) -> None:
    hung, free = prompt_rollout("faq-gate-hung"), prompt_rollout("faq-gate-free")
    for rollout in (hung, free):
        rollout.apply(rollout.version("1.0.0"))
    for rollout in (hung, free):
        rollout.wait_phase("1.0.0", "Stable")
    receiver.hang("/ask", 60)
    hook = {
        "name": "ask",
        "type": "confirm-rollout",
        "url": receiver.url + "/ask",
        "timeoutSeconds": 8,
    }
    hung.apply(_with_hooks(hung.version("1.1.0"), hook))
    manual = [{"weight": 30, "pause": "manual"}]
    free.apply(free.version("1.1.0", steps=manual))
    started = time.monotonic()
    free.wait_phase("1.1.0", "Progressing", 10)
    free.request("1.1.0", "promote")
    free.wait_phase("1.1.0", "Promoted", 10)
    assert time.monotonic() - started < 8, "the other prompt waited for the hung webhook"
    assert hung.status("1.1.0").get("phase") is None  # still Pending: no traffic
    held = hung.wait(
        "1.1.0", lambda s: _gate(s, "ask").get("result") == "Failed", 20, "to time out"
    )
    assert held["message"] == (
        "waiting for confirm-rollout webhook 'ask': no answer after 1 try in 8s (timed out)"
    )
    assert held.get("phase") is None and not held.get("weight")
    assert hung.status("1.0.0")["weight"] == 100


def test_a_rollback_webhook_is_told_once_and_its_failure_undoes_nothing(
    prompt_rollout: MakeRollout, receiver: WebhookReceiver, fake_model: str
) -> None:
    rollout = prompt_rollout("faq-gate-rollback")
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    receiver.answer("/page", 500)
    hook = {"name": "page", "type": "rollback", "url": receiver.url + "/page", "timeoutSeconds": 1}
    manual = [{"weight": 50, "pause": "manual"}]
    with LoadDriver(rollout.service, rollout.prompt):
        rollout.apply(_with_hooks(rollout.version("1.1.0", model=CANARY_MODEL, steps=manual), hook))
        rollout.wait_phase("1.1.0", "Progressing", 15)
        httpx.post(
            f"{fake_model}/admin/faults", json={"models": [CANARY_MODEL], "status": 503}, timeout=10
        ).raise_for_status()
        told = rollout.wait(
            "1.1.0", lambda s: _gate(s, "page").get("result") == "Failed", 45, "to page"
        )
    assert (told["phase"], told["weight"]) == ("RolledBack", 0)
    assert _gate(told, "page")["message"].startswith("HTTP 500 after ")
    tries = len(receiver.received("/page"))  # one notice: its retries within 1 s
    assert tries >= 2
    time.sleep(2)
    calls = receiver.received("/page")
    assert len(calls) == tries  # and nothing after: the notice is not sent again
    assert {(r.body["phase"], r.body["type"], r.verified) for r in calls} == {
        ("RolledBack", "rollback", True)
    }
    assert rollout.status("1.1.0")["phase"] == "RolledBack"
    message = f"rollback webhook 'page': {_gate(told, 'page')['message']}"
    failed = ("Warning", "WebhookFailed", message)
    rollout.wait_events("1.1.0", lambda es: failed in es, "to show the failed webhook")
