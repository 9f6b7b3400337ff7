"""Webhook gates as decisions (pure): each type's hold / continue / stop, as tables.

`decide_with_gates` returns the webhooks it needs answered; the tests answer them as the
kopf layer would (`settle`) and look at the decision that follows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.v1alpha1 import Phase, PromptVersionSpec, PromptVersionStatus, Webhook, WebhookType
from controller.analysis import Assessment, Measurement, Verdict
from controller.conditions import format_time
from controller.gate_calls import GateCall, GateOutcome
from controller.gates import build_notice_changes, build_notices
from controller.rollout import Change, VersionView, decide_with_gates, parse_request

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SPEC_FILE = Path(__file__).resolve().parents[2] / "prompts" / "policy-qa-1.1.0.yaml"
BASE = PromptVersionSpec.model_validate(yaml.safe_load(SPEC_FILE.read_text())["spec"])
PASSED = Assessment(Verdict.SUCCESSFUL, (), Measurement())
FAILED = Assessment(Verdict.FAILED, ("error rate 0.5 > 0.05",), Measurement())
YES, NO, DOWN = (
    GateOutcome(True, "HTTP 200"),
    GateOutcome(False, "HTTP 403"),
    GateOutcome(False, "HTTP 500 after 9 tries in 10s (timed out)"),
)


def hook(name: str, kind: WebhookType) -> Webhook:
    return Webhook(name=name, type=kind, url=f"http://127.0.0.1:1/{name}")


def version(
    v: str, phase: Phase | None, weight: int | None, *hooks: Webhook, **status: Any
) -> VersionView:
    request = parse_request(status.pop("request", None))
    rollout = BASE.rollout.model_copy(update={"webhooks": list(hooks)})
    spec = BASE.model_copy(update={"version": v, "rollout": rollout})
    return VersionView(
        name="policy-qa-" + v.replace(".", "-"),
        spec=spec,
        status=PromptVersionStatus(phase=phase, weight=weight, **status),
        request=request,
    )


def settle(
    views: Sequence[VersionView],
    answers: Mapping[str, GateOutcome],
    assessment: Assessment | None = None,
    now: datetime = T0,
) -> tuple[dict[str, Change], list[str]]:
    """Decide, answering each webhook asked for from `answers` (by name), as the kopf layer."""
    results: dict[tuple[str, str], GateOutcome] = {}
    asked: list[str] = []
    for _ in range(4):
        changes, calls = decide_with_gates(views, assessment, now, (), results)
        if not calls:
            return {c.name: c for c in changes}, asked
        for call in calls:
            asked.append(call.hook.name)
            results[(call.name, call.hook.name)] = answers[call.hook.name]
    raise AssertionError(f"still asking after 4 rounds: {asked}")


CONFIRM = hook("ask", WebhookType.CONFIRM_ROLLOUT)
PRE = hook("smoke", WebhookType.PRE_ROLLOUT)
PROMOTE = hook("sign-off", WebhookType.CONFIRM_PROMOTION)
POST = hook("announce", WebhookType.POST_ROLLOUT)
BACK = hook("page", WebhookType.ROLLBACK)
STABLE = version("1.0.0", Phase.STABLE, 100)
HALF = version("1.0.0", Phase.STABLE, 50)  # next to a canary at its last step
NEW = "policy-qa-1-1-0"


@pytest.mark.parametrize(
    ("answers", "asked", "phase", "weight", "message"),
    [
        ({}, [], Phase.PROGRESSING, 10, "rolling out over 1.0.0: step 1"),
        ({"ask": YES, "smoke": YES}, ["ask", "smoke"], Phase.PROGRESSING, 10, "rolling"),
        ({"ask": NO, "smoke": YES}, ["ask"], None, None, "waiting for confirm-rollout "),
        ({"ask": YES, "smoke": DOWN}, ["ask", "smoke"], Phase.ABORTED, 0, "stopped by pre-"),
        ({"ask": NO, "smoke": DOWN}, ["ask"], None, None, "waiting for confirm-rollout"),
    ],
    ids=["no-webhooks", "both-yes", "confirm-no-holds", "pre-fails-stops", "confirm-first"],
)
def test_admission(
    answers: dict[str, GateOutcome],
    asked: list[str],
    phase: Phase | None,
    weight: int | None,
    message: str,
) -> None:
    hooks = (CONFIRM, PRE) if answers else ()
    changes, called = settle([STABLE, version("1.1.0", None, None, *hooks)], answers)
    assert called == asked
    status = changes[NEW].status
    assert (status.phase, status.weight) == (phase, weight)
    assert (status.message or "").startswith(message)
    assert "policy-qa-1-0-0" not in changes or changes["policy-qa-1-0-0"].status.weight == 90
    if phase is not Phase.PROGRESSING:  # held or stopped: the stable version keeps everything
        assert "policy-qa-1-0-0" not in changes


def test_a_failed_pre_rollout_is_degraded_with_its_reason_and_a_warning() -> None:
    changes, _ = settle([STABLE, version("1.1.0", None, None, PRE)], {"smoke": DOWN})
    status, events = changes[NEW].status, changes[NEW].events
    degraded = next(c for c in status.conditions or [] if c.type == "Degraded")
    assert degraded.status == "True"
    assert status.message == (
        "stopped by pre-rollout webhook 'smoke': HTTP 500 after 9 tries in 10s (timed out)"
    )
    assert ("Warning", "Aborted", status.message) in events
    assert status.gates == [
        {
            "name": "smoke",
            "type": "pre-rollout",
            "result": "Failed",
            "message": "HTTP 500 after 9 tries in 10s (timed out)",
            "time": format_time(T0),
        }
    ]


def test_a_held_version_leaves_the_current_canary_alone() -> None:
    canary = version("1.1.0", Phase.PROGRESSING, 10, step_index=0, step_started_at=format_time(T0))
    newest = version("1.2.0", None, None, CONFIRM)
    changes, _ = settle([STABLE, canary, newest], {"ask": NO})
    assert "policy-qa-1-1-0" not in changes
    assert changes["policy-qa-1-2-0"].events == [
        ("Normal", "GateHeld", "confirm-rollout webhook 'ask': HTTP 403")
    ]


@pytest.mark.parametrize(
    ("seconds", "asked_again"), [(1, False), (9, False), (10, True), (60, True)]
)
def test_a_confirm_rollout_no_is_asked_again_each_interval(seconds: int, asked_again: bool) -> None:
    refused = {"name": "ask", "type": "confirm-rollout", "result": "Failed"}
    held = version(
        "1.1.0",
        None,
        None,
        CONFIRM,
        gates=[{**refused, "message": "HTTP 403", "time": format_time(T0)}],
        message="waiting for confirm-rollout webhook 'ask': HTTP 403",
    )
    now = T0 + timedelta(seconds=seconds)
    changes, asked = settle([STABLE, held], {"ask": NO}, now=now)
    assert asked == (["ask"] if asked_again else [])
    assert changes.get(NEW) is None or changes[NEW].status.phase is None  # still held
    if not asked_again:
        assert NEW not in changes  # nothing new to write, no Event


def last_step(*hooks: Webhook, **status: Any) -> VersionView:
    """1.1.0 at its last step (50 %), its 5 m pause over."""
    started = format_time(T0 - timedelta(minutes=6))
    return version(
        "1.1.0", Phase.PROGRESSING, 50, *hooks, step_index=1, step_started_at=started, **status
    )


@pytest.mark.parametrize(
    ("hooks", "answers", "assessment", "phase", "weight", "asked"),
    [
        ((), {}, PASSED, Phase.PROMOTED, 100, []),
        ((PROMOTE,), {"sign-off": YES}, PASSED, Phase.PROMOTED, 100, ["sign-off"]),
        ((PROMOTE,), {"sign-off": NO}, PASSED, None, None, ["sign-off"]),
        ((PROMOTE,), {"sign-off": DOWN}, PASSED, None, None, ["sign-off"]),
        ((PROMOTE,), {"sign-off": YES}, None, None, None, []),
        ((PROMOTE,), {"sign-off": YES}, FAILED, None, None, []),
    ],
    ids=["none", "yes-promotes", "no-holds", "down-holds", "no-analysis", "failed-analysis"],
)
def test_confirm_promotion(
    hooks: tuple[Webhook, ...],
    answers: dict[str, GateOutcome],
    assessment: Assessment | None,
    phase: Phase | None,
    weight: int | None,
    asked: list[str],
) -> None:
    changes, called = settle([HALF, last_step(*hooks)], answers, assessment)
    assert called == asked
    status = changes[NEW].status if NEW in changes else None
    assert (status and status.phase, status and status.weight) == (phase, weight)
    if answers.get("sign-off") in (NO, DOWN) and assessment is PASSED:
        assert status is not None and status.message is not None
        assert status.message.startswith("waiting for confirm-promotion webhook 'sign-off': ")
        assert "policy-qa-1-0-0" not in changes  # the stable version keeps its 50 %


def test_a_held_promotion_still_rolls_back_on_failed_analyses() -> None:
    canary = last_step(PROMOTE, consecutive_failures=1)
    changes, asked = settle([HALF, canary], {"sign-off": NO}, FAILED)
    assert asked == []
    assert changes[NEW].status.phase is Phase.ROLLED_BACK


def test_a_manual_promotion_needs_no_confirmation() -> None:
    canary = last_step(PROMOTE, request="promote@2026-11-25T12:00:00Z")
    changes, asked = settle([HALF, canary], {"sign-off": NO})
    assert asked == []
    assert changes[NEW].status.phase is Phase.PROMOTED


def test_a_version_without_steps_asks_every_gate_before_promotion() -> None:
    rollout = BASE.rollout.model_copy(update={"steps": [], "webhooks": [CONFIRM, PRE, PROMOTE]})
    view = version("1.1.0", None, None)
    view = dataclasses.replace(view, spec=view.spec.model_copy(update={"rollout": rollout}))
    held, asked = settle([STABLE, view], {"ask": YES, "smoke": YES, "sign-off": NO})
    assert asked == ["ask", "smoke", "sign-off"]
    assert held[NEW].status.phase is None
    done, _ = settle([STABLE, view], {"ask": YES, "smoke": YES, "sign-off": YES})
    assert done[NEW].status.phase is Phase.PROMOTED


def test_a_retry_runs_the_pre_rollout_gate_again() -> None:
    halted = version("1.1.0", Phase.ROLLED_BACK, 0, PRE, request="retry@2026-11-25T12:00:00Z")
    changes, asked = settle([STABLE, halted], {"smoke": DOWN})
    assert asked == ["smoke"]
    assert changes[NEW].status.phase is Phase.ABORTED
    changes, _ = settle([STABLE, halted], {"smoke": YES})
    assert changes[NEW].status.phase is Phase.PROGRESSING


@pytest.mark.parametrize(
    ("before", "after", "called"),
    [
        (Phase.PROGRESSING, Phase.PROMOTED, ["announce"]),
        (Phase.PROGRESSING, Phase.ROLLED_BACK, ["page"]),
        (Phase.PROGRESSING, Phase.ABORTED, []),
        (Phase.PROGRESSING, Phase.PAUSED, []),
        (Phase.PROMOTED, Phase.PROMOTED, []),
        (None, Phase.STABLE, []),
    ],
    ids=["promoted", "rolled-back", "aborted", "paused", "unchanged", "first-version"],
)
def test_notices_follow_promotions_and_rollbacks(
    before: Phase | None, after: Phase, called: list[str]
) -> None:
    view = version("1.1.0", before, 50, PROMOTE, POST, BACK)
    change = Change(view.name)
    change.status.update(phase=after)
    assert [c.hook.name for c in build_notices([view], [change])] == called


def test_a_failed_notice_is_recorded_and_changes_nothing_else() -> None:
    view = version("1.1.0", Phase.PROGRESSING, 50, POST, gates=[])
    promoted = Change(view.name)
    promoted.status.update(phase=Phase.PROMOTED, weight=100)
    [call] = build_notices([view], [promoted])
    assert call.payload == {
        "prompt": "policy-qa",
        "version": "1.1.0",
        "phase": "Promoted",
        "step": None,
        "type": "post-rollout",
        "metadata": {},
    }
    outcomes: list[tuple[GateCall, GateOutcome]] = [(call, DOWN)]
    [change] = build_notice_changes([view], [promoted], outcomes, T0)
    assert change.status.model_fields_set == {"gates"}
    assert change.status.gates is not None
    assert change.status.gates[0]["result"] == "Failed"
    assert change.events == [
        ("Warning", "WebhookFailed", f"post-rollout webhook 'announce': {DOWN.message}")
    ]
