"""Shadow steps end to end: the real controller, service, Prometheus and fake model.

A canary whose model fails every call starts with a shadow step: the service answers
every request with the stable version and runs the canary in the background; the
controller analyses the shadow answers (``mode="shadow"``) and rolls the canary back
during its shadow step, without its live weight ever leaving 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.rollout_harness import (
    CANARY_MODEL,
    FAST_ANALYSIS,
    FAST_STEPS,
    LoadDriver,
    PromptRollout,
)

pytestmark = pytest.mark.integration

MakeRollout = Callable[[str], PromptRollout]
SHADOW_STEP = {"shadow": {"percent": 100, "duration": "60s"}}


def test_a_broken_canary_is_rolled_back_in_its_shadow_step_and_never_served(
    prompt_rollout: MakeRollout, fake_model: str
) -> None:
    rollout = prompt_rollout("faq-shadow")
    rollout.apply(rollout.version("1.0.0"))
    rollout.wait_phase("1.0.0", "Stable")
    faults = {"status": 503, "models": [CANARY_MODEL]}
    httpx.post(f"{fake_model}/admin/faults", json=faults, timeout=10).raise_for_status()
    weights: list[Any] = []
    with LoadDriver(rollout.service, rollout.prompt) as load:
        rollout.apply(
            rollout.version("1.1.0", model=CANARY_MODEL, steps=[SHADOW_STEP, *FAST_STEPS])
        )
        shadowing = rollout.wait(
            "1.1.0", lambda s: s.get("stepKind") == "Shadow", 20, "its shadow step"
        )
        assert (shadowing["weight"], shadowing["shadowPercent"]) == (0, 100)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            status = rollout.status("1.1.0")
            weights.append(status.get("weight"))
            if status.get("phase") == "RolledBack":
                break
            time.sleep(0.2)

    assert status["phase"] == "RolledBack", rollout.describe()
    assert set(weights) == {0}, weights  # never any live weight
    assert "error rate" in status["message"], status["message"]
    assert status["lastAnalysis"]["mode"] == "shadow"
    assert status["shadowSamples"] >= FAST_ANALYSIS["minRequests"]
    assert "shadowPercent" not in status or not status["shadowPercent"]  # shadowing stopped
    # Every answer a client got came from the stable version.
    assert set(load.versions()) == {"1.0.0"}, load.counts()
    assert load.counts()[("1.0.0", 200)] > 0, load.counts()
