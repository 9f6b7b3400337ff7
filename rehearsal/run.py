"""One rehearsal from start to end (I/O): start the stack, apply, drive, watch, conclude.

The first manifest is applied alone and must become ``Stable``; then traffic starts, and
after a warm-up of `WARMUP_SECONDS` the other manifests are applied at once (time 0 of
the timeline). The rehearsal ends when
every other version has reached an ended phase (Promoted, RolledBack, Aborted,
Superseded, Invalid), or when the traffic's duration (divided by ``--speed``) is over.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rehearsal.notify import build_notifications, build_notify_env, run_receiver
from rehearsal.scenario import LoadedScenario
from rehearsal.speed import build_rehearsal_manifest, decide_timing
from rehearsal.stack import SetupError, Stack, apply_manifest, run_stack
from rehearsal.timeline import Recorder, build_result
from rehearsal.traffic import FeedbackTally, TrafficDriver, assess_rates

__all__ = ["RATE_WINDOW_SECONDS", "WARMUP_SECONDS", "Rehearsal", "View", "run_rehearsal"]

#: The live rates are over this many (real) seconds of traffic.
RATE_WINDOW_SECONDS = 10.0
#: Traffic to the stable version alone before the others are applied: warms the service up
#: (a cold first request is slow) and gives the analysis a stable baseline. Not scaled.
WARMUP_SECONDS = 5.0
#: After the last version ended: the controller's other patches of that moment land.
SETTLE_SECONDS = 1.5
#: How long the stable version may take to become Stable.
STABLE_TIMEOUT_SECONDS = 60.0
_POLL_SECONDS = 0.5


class View(Protocol):
    """Where a rehearsal reports progress (terminal, plain lines, stderr)."""

    def say(self, text: str) -> None: ...

    def update(
        self,
        t: float,
        recorder: Recorder,
        added: list[dict[str, Any]],
        rates: Mapping[str, Mapping[str, Any]],
    ) -> None: ...


@dataclass(frozen=True)
class Rehearsal:
    """What `run_rehearsal` returns: the JSON result and the chart's samples."""

    result: dict[str, Any]
    samples: list[dict[str, Any]]


def _statuses(stack: Stack) -> dict[str, dict[str, Any]]:
    return {
        str(item["spec"]["version"]): dict(item.get("status") or {})
        for item in stack.kube.list_promptversions("default")
    }


def _wait_stable(stack: Stack, version: str) -> None:
    deadline = time.monotonic() + STABLE_TIMEOUT_SECONDS
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = _statuses(stack).get(version, {})
        if status.get("phase") == "Stable":
            return
        if status.get("phase") == "Invalid":
            raise SetupError(f"the stable version {version} is Invalid: {status.get('message')}")
        if not stack.controller.alive:
            raise SetupError(f"the controller exited:\n{stack.controller.log_tail()}")
        time.sleep(_POLL_SECONDS)
    raise SetupError(
        f"the stable version {version} did not become Stable within "
        f"{STABLE_TIMEOUT_SECONDS:g} s (phase {status.get('phase')}):\n"
        f"{stack.controller.log_tail()}"
    )


def _rates(driver: TrafficDriver, versions: list[str]) -> dict[str, dict[str, Any]]:
    recent = driver.since(time.monotonic() - RATE_WINDOW_SECONDS)
    tally = driver.tally
    rates: dict[str, dict[str, Any]] = {}
    for version in versions:
        rates[version] = dict(assess_rates([e for e in recent if e.version == version]))
        sent = tally.sent[version]
        rates[version]["feedbackNegative"] = tally.negative[version] / sent if sent else None
    return rates


def _feedback_summary(tally: FeedbackTally, wanted: bool) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "sent": dict(tally.sent),
        "negative": dict(tally.negative),
        "responses": {str(k): v for k, v in sorted(tally.statuses.items())},
    }
    if tally.endpoint_missing:
        summary["problem"] = (
            f"POST /v1/feedback answered 404 to all {tally.total} ratings: this service has "
            "no feedback endpoint (or forgot every answer), so no feedback reached the analysis"
        )
    elif wanted and tally.total == 0:
        summary["problem"] = "no rating was sent (no answer came from a version with feedback)"
    return summary


def _watch(
    stack: Stack,
    driver: TrafficDriver,
    recorder: Recorder,
    view: View,
    duration: float,
    notes: list[str],
) -> float:
    """Observe until every version but the first has ended, or `duration` is over;
    returns the seconds watched."""
    versions = list(recorder.versions)
    started = time.monotonic()
    deadline = started + duration
    while True:
        now = time.monotonic()
        rates = _rates(driver, versions)
        added = recorder.observe(now - started, _statuses(stack), rates)
        view.update(now - started, recorder, added, rates)
        if len(versions) > 1 and all(v in recorder.decided_at for v in versions[1:]):
            break
        if now >= deadline:
            undecided = [v for v in versions[1:] if v not in recorder.decided_at]
            if undecided:
                notes.append(
                    f"traffic ended after {duration:g} s with {', '.join(undecided)} undecided"
                )
            break
        if not stack.controller.alive:
            raise SetupError(f"the controller exited:\n{stack.controller.log_tail()}")
        time.sleep(_POLL_SECONDS)
    elapsed = time.monotonic() - started
    # The controller patches one version, then the other (a promoted canary, then
    # the stable version it supersedes): look once more once they have settled.
    time.sleep(SETTLE_SECONDS)
    now = time.monotonic()
    added = recorder.observe(now - started, _statuses(stack), _rates(driver, versions))
    view.update(now - started, recorder, added, _rates(driver, versions))
    return elapsed


def run_rehearsal(loaded: LoadedScenario, speed: float, view: View, workdir: Path) -> Rehearsal:
    """Run the scenario; SetupError when a piece does not start or a manifest is refused."""
    notes: list[str] = []
    manifests = []
    for manifest in loaded.manifests:
        scaled, found = build_rehearsal_manifest(manifest, speed)
        manifests.append(scaled)
        notes += found
    for note in notes:
        view.say(f"note: {note}")
    timing = decide_timing(loaded.scenario, speed)
    versions = loaded.versions
    recorder = Recorder(versions)
    traffic = loaded.scenario.traffic
    with contextlib.ExitStack() as exits:
        receiver = exits.enter_context(run_receiver(loaded.scenario.notify))
        if receiver is not None:
            view.say(f"notifications go to a local receiver ({receiver.url})")
        stack = exits.enter_context(
            run_stack(loaded, workdir, view.say, build_notify_env(receiver))
        )
        view.say(f"applying the stable version {versions[0]}")
        apply_manifest(stack.kube, manifests[0])
        _wait_stable(stack, versions[0])
        driver = TrafficDriver(
            stack.service_url,
            loaded.prompt,
            loaded.questions,
            traffic.rps,
            traffic.users,
            loaded.scenario.seed,
            loaded.scenario.feedback,
        )
        driver.start()
        try:
            view.say(f"traffic to {versions[0]} alone for {WARMUP_SECONDS:g} s (warm-up)")
            time.sleep(WARMUP_SECONDS)
            for manifest in manifests[1:]:
                view.say(f"applying {manifest['spec']['version']}")
                apply_manifest(stack.kube, manifest)
            elapsed = _watch(stack, driver, recorder, view, timing.duration_seconds, notes)
        finally:
            driver.stop()
    # Out of the block: the controller has stopped (its queue drained), then the receiver.
    notifications: dict[str, Any] = {}
    if receiver is not None:
        notifications["notifications"], notify_notes = build_notifications(receiver)
        notes += notify_notes
    feedback = _feedback_summary(driver.tally, bool(loaded.scenario.feedback))
    if "problem" in feedback:
        notes.append(f"feedback: {feedback['problem']}")
    answered = len(driver.exchanges)
    result = build_result(
        recorder,
        notes=notes,
        extra={
            "scenario": str(loaded.path),
            "speed": speed,
            "elapsedSeconds": round(elapsed, 1),
            "traffic": {
                "requests": answered,
                "dropped": driver.dropped,
                "byStatus": _by_status(driver),
            },
            "feedback": feedback,
            **notifications,
        },
    )
    return Rehearsal(result, recorder.samples)


def _by_status(driver: TrafficDriver) -> dict[str, int]:
    counts: dict[str, int] = {}
    for exchange in driver.exchanges:
        key = str(exchange.status)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
