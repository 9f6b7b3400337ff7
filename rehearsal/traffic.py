"""Simulated callers of a rehearsal: answers at a fixed rate, and their users' ratings.

`TrafficDriver` runs in a thread of its own (its own event loop): every ``1/rps`` s it asks
``POST /v1/answers`` a question for one of ``users`` callers (user ids are sticky, so the
service keeps each caller on one version), at most `max_in_flight` at once (beyond that
a request is dropped and counted, never queued). After an answer from a version listed in
``feedback``, that fraction of callers rate it with ``POST /v1/feedback`` (``-1`` for the
``negative`` share, else ``1``). Every pick is seeded per request: same seed, same callers,
questions and ratings for request n.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from rehearsal.scenario import FeedbackBehaviour

__all__ = ["Exchange", "FeedbackTally", "TrafficDriver", "assess_rates", "decide_caller"]


@dataclass(frozen=True)
class Exchange:
    """One answer: when it was asked (monotonic), its version, status, outcome and latency."""

    at: float
    version: str  # "" when the response named no version (errors before routing)
    status: int  # 0: no HTTP response (connection error, timeout)
    outcome: str  # the service's outcome, or "" when the body had none
    latency_ms: float
    cited: bool


@dataclass
class FeedbackTally:
    """Ratings sent per version, and how the service answered them (status → count)."""

    sent: Counter[str] = field(default_factory=Counter)
    negative: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    @property
    def endpoint_missing(self) -> bool:
        """Every rating was answered 404: the service has no feedback endpoint (or forgot
        every answer), so no feedback reached the analysis."""
        return self.total > 0 and self.statuses.get(404, 0) == self.total


def assess_rates(exchanges: Sequence[Exchange]) -> dict[str, float | int | None]:
    """Requests, error/unknown/refused/uncited rates and p95 latency of `exchanges` (pure)."""
    count = len(exchanges)
    if not count:
        return {"requests": 0, "errorRate": None, "unknownRate": None, "refusedRate": None,
                "uncitedRate": None, "p95LatencyMs": None}  # fmt: skip
    errors = sum(1 for e in exchanges if e.status == 0 or e.status >= 500)
    outcomes = Counter(e.outcome for e in exchanges)
    answered = [e for e in exchanges if e.outcome in {"answered", "fallback"}]
    latencies = sorted(e.latency_ms for e in exchanges if e.status == 200)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else None
    return {
        "requests": count,
        "errorRate": errors / count,
        "unknownRate": outcomes["unknown"] / count,
        "refusedRate": outcomes["refused"] / count,
        "uncitedRate": (sum(1 for e in answered if not e.cited) / len(answered))
        if answered
        else None,
        "p95LatencyMs": p95,
    }


def decide_caller(
    seed: int, n: int, users: int, questions: Sequence[str]
) -> tuple[random.Random, str, str]:
    """Request `n`'s dice (for its rating), caller and question: the same for the same seed."""
    dice = random.Random(f"{seed}:{n}")  # noqa: S311 - a simulation, not crypto
    user = f"user-{dice.randrange(users)}"
    return dice, user, questions[dice.randrange(len(questions))]


@dataclass
class TrafficDriver:
    """Answers (and ratings) at a bounded rate from a background thread, until stopped."""

    service: str
    prompt: str
    questions: Sequence[str]
    rps: float
    users: int
    seed: int
    feedback: Mapping[str, FeedbackBehaviour]
    max_in_flight: int = 32
    exchanges: list[Exchange] = field(default_factory=list, init=False)
    tally: FeedbackTally = field(default_factory=FeedbackTally, init=False)
    dropped: int = field(default=0, init=False)
    started_at: float | None = field(default=None, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="rehearsal-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=20)

    def since(self, moment: float) -> list[Exchange]:
        """The answers asked at or after `moment` (time.monotonic())."""
        with self._lock:
            return [e for e in self.exchanges if e.at >= moment]

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self.started_at = time.monotonic()
        next_at = loop.time()
        pending: set[asyncio.Task[None]] = set()
        limits = httpx.Limits(max_connections=self.max_in_flight)
        async with httpx.AsyncClient(base_url=self.service, timeout=30.0, limits=limits) as client:
            n = 0
            while not self._stop.is_set():
                if len(pending) < self.max_in_flight:
                    task = asyncio.create_task(self._exchange(client, n))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                else:
                    self.dropped += 1
                n += 1
                next_at += 1 / self.rps
                await asyncio.sleep(max(0.0, next_at - loop.time()))
            if pending:
                _, late = await asyncio.wait(pending, timeout=10)
                for task in late:
                    task.cancel()

    async def _exchange(self, client: httpx.AsyncClient, n: int) -> None:
        dice, user, question = decide_caller(self.seed, n, self.users, self.questions)
        body = {"prompt": self.prompt, "question": question, "user": user}
        at = time.monotonic()
        try:
            response = await client.post("/v1/answers", json=body)
        except httpx.HTTPError:
            self._record(Exchange(at, "", 0, "", (time.monotonic() - at) * 1000, cited=False))
            return
        latency_ms = (time.monotonic() - at) * 1000
        version = response.headers.get("x-prompt-version", "")
        payload = _json(response)
        outcome = str(payload.get("outcome", "")) if payload else ""
        cited = bool(payload.get("citations")) if payload else False
        self._record(Exchange(at, version, response.status_code, outcome, latency_ms, cited))
        behaviour = self.feedback.get(version)
        request_id = payload.get("request_id") if payload else None
        if response.status_code != 200 or behaviour is None or not request_id:
            return
        if dice.random() >= behaviour.rate:
            return
        score = -1 if dice.random() < behaviour.negative else 1
        await self._rate(client, version, str(request_id), score)

    async def _rate(
        self, client: httpx.AsyncClient, version: str, request_id: str, score: int
    ) -> None:
        try:
            response = await client.post(
                "/v1/feedback", json={"request_id": request_id, "score": score}
            )
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        with self._lock:
            self.tally.sent[version] += 1
            self.tally.negative[version] += score < 0
            self.tally.statuses[status] += 1

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)


def _json(response: httpx.Response) -> dict[str, object] | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
