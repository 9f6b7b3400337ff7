"""End-to-end rollout helpers: PromptVersion manifests, a load driver, the controller process.

- `build_version()` writes a PromptVersion as a dict (no retrieval: its template carries its
  own ``CONTEXT`` so the fake model answers), `PromptRollout` applies them with kubectl and
  reads back what the controller and the service made of them.
- `LoadDriver` sends a bounded rate of answers (users ``user-0..99``) from a thread and counts
  what came back per version and status; it stops on exit, or by itself after `max_seconds`.
- `ControllerProcess` runs the kopf operator as a subprocess (``kopf run -A --standalone``),
  and can SIGKILL it and start it again with other settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import yaml

from rehearsal.processes import ControllerProcess
from tests.support.kube import KubeCluster

__all__ = [
    "CANARY_MODEL",
    "FAST_ANALYSIS",
    "FAST_STEPS",
    "STABLE_MODEL",
    "WEBHOOK_SECRET",
    "ControllerProcess",
    "LoadDriver",
    "PromptRollout",
    "build_version",
    "closed_port_url",
    "controller_env",
    "object_name",
    "poll",
]

STABLE_MODEL, CANARY_MODEL = "gpt-4o-mini", "gpt-4.1-nano"
PROMPT_LABEL = "promptrollouts.io/prompt"
REQUEST_ANNOTATION = "promptrollouts.io/request"
T = TypeVar("T")
#: The key the e2e controller signs webhook calls with (tests/e2e/test_gates.py verifies it).
WEBHOOK_SECRET = "e2e-webhook-secret"
QUESTION = "How long do refunds take?"
USER_TEMPLATE = "CONTEXT:\n[1] (faq.md) Refunds take five days.\n\nQUESTION: {{ question }}"
FAST_STEPS: list[dict[str, Any]] = [{"weight": 20, "pause": "2s"}, {"weight": 50, "pause": "2s"}]
# maxP95LatencyMs sits on a histogram bucket bound (2.5 s) far above a healthy answer, even on
# a loaded 2-core CI machine (p95 reached 1.15 s there while the controller restarted); the
# slow-canary test injects 4 s, which lands wholly in the bucket above it.
FAST_ANALYSIS: dict[str, Any] = {
    "interval": "1s",
    "window": "5s",
    "minRequests": 5,
    "maxErrorRate": 0.1,
    "maxP95LatencyMs": 2500,
    "failureLimit": 2,
    "errorLimit": 3,
}


def object_name(prompt: str, version: str) -> str:
    """`faq` 1.1.0 → `faq-1-1-0`."""
    return f"{prompt}-{version.replace('.', '-')}"


def build_version(
    prompt: str,
    version: str,
    *,
    model: str = STABLE_MODEL,
    steps: Iterable[Mapping[str, Any]] = FAST_STEPS,
    analysis: Mapping[str, Any] = FAST_ANALYSIS,
    user_template: str = USER_TEMPLATE,
    variables: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A PromptVersion without retrieval and without fallbacks (pure)."""
    return {
        "apiVersion": "promptrollouts.io/v1alpha1",
        "kind": "PromptVersion",
        "metadata": {"name": object_name(prompt, version), "labels": {PROMPT_LABEL: prompt}},
        "spec": {
            "prompt": prompt,
            "version": version,
            "owner": "e2e@example.com",
            "template": {"system": "Answer from the context.", "user": user_template},
            "variables": [dict(v) for v in variables],
            "model": {"name": model, "timeoutSeconds": 10, "fallbacks": []},
            "guardrails": {"requireCitations": False},
            "rollout": {"steps": [dict(s) for s in steps], "analysis": dict(analysis)},
        },
    }


def poll(probe: Callable[[], T | None], timeout: float, what: Callable[[], str] | str) -> T:
    """Call `probe` every 50 ms until it returns something other than None.

    `what` describes the wait in the TimeoutError (a callable is evaluated then, so the
    message can carry the state that was last seen).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise TimeoutError(f"timed out after {timeout} s waiting for {detail}")
        time.sleep(0.05)


# --- load ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One request the driver sent: when (monotonic), for whom, and what came back."""

    at: float
    user: str
    version: str  # "" when the response carried no X-Prompt-Version (errors)
    status: int


@dataclass
class LoadDriver:
    """Answers at a bounded rate from a background thread, until stopped (or `max_seconds`).

    Requests are started on a fixed schedule (`rate` per second, users ``user-0`` to
    ``user-{users-1}`` in turn) and run concurrently, at most `max_in_flight` at once: a
    slow version does not slow the schedule, and a saturated service drops requests
    (counted in `dropped`) instead of queueing them.
    """

    service: str
    prompt: str
    rate: float = 20.0
    users: int = 100
    max_in_flight: int = 32
    #: A safety cap for a driver nobody stopped, longer than any test's worst case: a
    #: driver that stopped by itself mid-test starved the canary's analysis (0 requests in
    #: the window) on a loaded machine, where the restart test ran past 120 s.
    max_seconds: float = 600.0
    answers: list[Answer] = field(default_factory=list, init=False)
    dropped: int = field(default=0, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._main, name="load-driver", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def since(self, moment: float = 0.0) -> list[Answer]:
        """The answers sent at or after `moment` (time.monotonic())."""
        with self._lock:
            return [a for a in self.answers if a.at >= moment]

    def counts(self, moment: float = 0.0) -> Counter[tuple[str, int]]:
        """(version, status) → requests, for the answers sent at or after `moment`."""
        return Counter((a.version, a.status) for a in self.since(moment))

    def versions(self, moment: float = 0.0) -> Counter[str]:
        """Successful answers per version since `moment`."""
        return Counter(a.version for a in self.since(moment) if a.status == 200)

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        started = next_at = loop.time()
        pending: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(base_url=self.service, timeout=15.0) as client:
            for n in itertools.count():
                if self._stop.is_set() or loop.time() - started > self.max_seconds:
                    break
                if len(pending) < self.max_in_flight:
                    task = asyncio.create_task(self._send(client, f"user-{n % self.users}"))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                else:
                    self.dropped += 1
                next_at += 1 / self.rate
                await asyncio.sleep(max(0.0, next_at - loop.time()))
            if pending:
                _, late = await asyncio.wait(pending, timeout=10)
                for task in late:
                    task.cancel()

    async def _send(self, client: httpx.AsyncClient, user: str) -> None:
        at = time.monotonic()
        body = {"prompt": self.prompt, "question": QUESTION, "user": user}
        try:
            response = await client.post("/v1/answers", json=body)
            version, status = response.headers.get("x-prompt-version", ""), response.status_code
        except httpx.HTTPError:
            version, status = "", 0
        with self._lock:
            self.answers.append(Answer(at, user, version, status))


# --- one prompt under test -----------------------------------------------------------------


@dataclass
class PromptRollout:
    """The versions of one prompt: applied with kubectl, observed through the API and service."""

    kube: KubeCluster
    service: str
    prompt: str
    folder: Path
    controller: ControllerProcess
    namespace: str = "default"
    _ids: Iterator[int] = field(default_factory=itertools.count, init=False)

    def name(self, version: str) -> str:
        return object_name(self.prompt, version)

    def version(self, version: str, **options: Any) -> dict[str, Any]:
        """A manifest of this prompt (see `build_version`)."""
        return build_version(self.prompt, version, **options)

    def apply(self, *manifests: Mapping[str, Any]) -> None:
        """`kubectl apply --validate=false -f` a file holding `manifests`."""
        path = self.folder / f"{self.prompt}-{next(self._ids)}.yaml"
        path.write_text(yaml.safe_dump_all([dict(m) for m in manifests]), encoding="utf-8")
        result = self.kube.kubectl("apply", "--validate=false", "-f", str(path))
        assert result.returncode == 0, result.stderr

    def request(self, version: str, action: str) -> str:
        """Ask the controller for `action` through the annotation; returns its value."""
        value = f"{action}@{self.prompt}-{next(self._ids)}"
        result = self.kube.kubectl(
            "annotate", "--overwrite", "pver", self.name(version), f"{REQUEST_ANNOTATION}={value}"
        )
        assert result.returncode == 0, result.stderr
        return value

    def status(self, version: str) -> dict[str, Any]:
        status: dict[str, Any] = (
            self.kube.get(self.namespace, self.name(version)).get("status") or {}
        )
        return status

    def statuses(self) -> dict[str, dict[str, Any]]:
        """version → status, for every version of the prompt."""
        return {
            item["spec"]["version"]: item.get("status") or {}
            for item in self.kube.list_promptversions(self.namespace)
            if item["spec"].get("prompt") == self.prompt
        }

    def weights(self) -> dict[str, int | None]:
        return {v: s.get("weight") for v, s in self.statuses().items()}

    def describe(self) -> str:
        """The prompt's statuses and the controller's last lines, for failure messages."""
        short = {
            version: {
                k: status.get(k)
                for k in ("phase", "weight", "stepIndex", "message", "consecutiveFailures")
            }
            | {"verdict": (status.get("lastAnalysis") or {}).get("verdict")}
            for version, status in self.statuses().items()
        }
        return f"{self.prompt}: {short}\n--- controller log ---\n{self.controller.log_tail()}"

    def wait(
        self,
        version: str,
        check: Callable[[dict[str, Any]], bool],
        timeout: float,
        what: str,
    ) -> dict[str, Any]:
        """Poll `version`'s status until `check(status)`; returns that status."""

        def probe() -> dict[str, Any] | None:
            status = self.status(version)
            return status if check(status) else None

        return poll(probe, timeout, lambda: f"{version} {what}; {self.describe()}")

    def wait_phase(self, version: str, phase: str, timeout: float = 20.0) -> dict[str, Any]:
        return self.wait(version, lambda s: s.get("phase") == phase, timeout, f"to be {phase}")

    def served(self) -> dict[str, tuple[str, int]]:
        """The service's view: version → (phase, weight)."""
        response = httpx.get(f"{self.service}/v1/prompts", timeout=10)
        response.raise_for_status()
        return {
            item["version"]: (item["phase"], item["weight"])
            for item in response.json()["items"]
            if item["prompt"] == self.prompt
        }

    def wait_served(self, weights: Mapping[str, int], timeout: float = 10.0) -> None:
        """Until the service routes with exactly `weights` (version → weight)."""

        def probe() -> bool | None:
            seen = {v: w for v, (_, w) in self.served().items()}
            return True if seen == dict(weights) else None

        poll(probe, timeout, lambda: f"the service to serve {weights}; it has {self.served()}")

    def answer(
        self, user: str, pinned: str | None = None, client: httpx.Client | None = None
    ) -> httpx.Response:
        headers = {"X-Prompt-Version": pinned} if pinned else {}
        body = {"prompt": self.prompt, "question": QUESTION, "user": user}
        if client is not None:
            return client.post("/v1/answers", json=body, headers=headers)
        return httpx.post(f"{self.service}/v1/answers", json=body, headers=headers, timeout=15)

    def events(self, version: str) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the Events about `version`, oldest first."""
        name = self.name(version)
        return [
            (e.get("type", ""), e.get("reason", ""), e.get("message", ""))
            for e in self.kube.list_objects("v1/events", self.namespace)
            if (e.get("involvedObject") or {}).get("name") == name
        ]

    def wait_events(
        self,
        version: str,
        check: Callable[[list[tuple[str, str, str]]], bool],
        what: str,
        timeout: float = 10.0,
    ) -> list[tuple[str, str, str]]:
        """Poll `version`'s Events until `check(events)`: kopf posts them after the status
        patch, from a queue, so a status already seen can be ahead of its Event."""

        def probe() -> list[tuple[str, str, str]] | None:
            events = self.events(version)
            return events if check(events) else None

        return poll(probe, timeout, lambda: f"{version}'s Events {what}: {self.events(version)}")

    def delete_all(self) -> None:
        """Delete the prompt's versions without waiting for the controller's finalizers."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.kube.kubectl(
                "delete", "pver", "-l", f"{PROMPT_LABEL}={self.prompt}", "--wait=false"
            )


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def controller_env(kube: KubeCluster, prometheus: str, service: str = "") -> dict[str, str]:
    """The controller's environment: the emulator's kubeconfig, Prometheus, the service the
    eval gates ask, no /metrics."""
    return {
        **os.environ,
        **kube.env,
        "PROMETHEUS_URL": prometheus,
        "SERVICE_URL": service,
        "CONTROLLER_METRICS_PORT": "0",
        "CONTROLLER_TICK_SECONDS": "1",
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
