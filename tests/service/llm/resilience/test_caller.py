"""ResilientChatModel over a scripted upstream and a fake clock: instant and deterministic."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from prompting.rendering import Message
from service.errors import (
    RateLimitedError,
    UpstreamError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from service.llm.chat import ChatRequest, ChatResponse
from service.llm.resilience.breaker import BreakerConfig, BreakerState
from service.llm.resilience.caller import ResilienceConfig, ResilientChatModel

PRIMARY, BACKUP, SPARE = "primary", "backup", "spare"
START = 1000.0
KEY = "idem-1"

#: A breaker that never opens, to see the retry budget alone.
NO_BREAKER = BreakerConfig(consecutive_failures=10**9, min_calls=10**9)

Outcome = ChatResponse | UpstreamError


def answer(model: str) -> ChatResponse:
    return ChatResponse(text=f"from {model}", model=model, input_tokens=10, output_tokens=5)


def status(code: int, retry_after: float | None = None) -> UpstreamError:
    return UpstreamError(
        f"upstream answered {code}", kind="status", status=code, retry_after=retry_after
    )


def failure(kind: str) -> UpstreamError:
    return UpstreamError(f"upstream {kind}", kind=kind)


class FakeClock:
    """A monotonic clock that only moves when something sleeps or an upstream call takes time."""

    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass(frozen=True)
class Call:
    """One request the upstream received, and when."""

    model: str
    timeout_seconds: float
    idempotency_key: str | None
    fallbacks: tuple[str, ...]
    at: float


@dataclass
class ScriptedUpstream:
    """Pops each model's scripted outcomes in order; `then` answers once a script runs out.

    A call takes `latency` seconds of fake time; a timeout takes the call's whole timeout.
    """

    clock: FakeClock
    scripts: dict[str, list[Outcome]] = field(default_factory=dict)
    then: Mapping[str, Outcome] = field(default_factory=dict)
    latency: float = 0.0
    calls: list[Call] = field(default_factory=list)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls.append(
            Call(
                request.model,
                request.timeout_seconds,
                request.idempotency_key,
                request.fallbacks,
                self.clock.now,
            )
        )
        script = self.scripts.get(request.model, [])
        if script:
            outcome = script.pop(0)
        else:
            assert request.model in self.then, f"unscripted call to {request.model}"
            outcome = self.then[request.model]
        if isinstance(outcome, UpstreamError) and outcome.kind == "timeout":
            self.clock.now += request.timeout_seconds
        else:
            self.clock.now += min(self.latency, request.timeout_seconds)
        if isinstance(outcome, UpstreamError):
            raise outcome
        return outcome

    def models_called(self) -> list[str]:
        return [call.model for call in self.calls]


@dataclass
class RecordingObserver:
    """Every hook call, in order."""

    events: list[tuple[str, ...]] = field(default_factory=list)

    def attempt(self, model: str, outcome: str) -> None:
        self.events.append(("attempt", model, outcome))

    def retry(self, model: str, wait: float) -> None:
        self.events.append(("retry", model, f"{wait:.3f}"))

    def breaker(self, model: str, state: BreakerState) -> None:
        self.events.append(("breaker", model, state.value))

    def rate_limit(self, model: str, waited: float, rejected: bool) -> None:
        self.events.append(("rate_limit", model, f"{waited:.3f}", str(rejected)))

    def throttled(self, model: str, retry_after: float | None) -> None:
        self.events.append(("throttled", model, str(retry_after)))


@dataclass
class Kit:
    """A resilient model wired to a scripted upstream, a fake clock and a recording observer."""

    clock: FakeClock
    upstream: ScriptedUpstream
    observer: RecordingObserver
    model: ResilientChatModel


def build(
    scripts: dict[str, list[Outcome]] | None = None,
    *,
    then: Mapping[str, Outcome] | None = None,
    latency: float = 0.0,
    **config: object,
) -> Kit:
    clock = FakeClock()
    upstream = ScriptedUpstream(clock, scripts or {}, then or {}, latency)
    observer = RecordingObserver()
    settings = ResilienceConfig(**config)
    model = ResilientChatModel(
        upstream, settings, observer=observer, clock=clock, sleep=clock.sleep, rng=random.Random(0)
    )
    return Kit(clock, upstream, observer, model)


def chat(
    model: str = PRIMARY, fallbacks: tuple[str, ...] = (), timeout: float = 30.0
) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[
            Message("system", "Answer briefly."),
            Message("user", "How long do refunds take?"),
        ],
        temperature=0.0,
        max_tokens=100,
        timeout_seconds=timeout,
        question="How long do refunds take?",
        fallbacks=fallbacks,
        idempotency_key=KEY,
    )


def breaker_state(kit: Kit, model: str) -> BreakerState:
    return kit.model.upstream_state(model).breaker.state


def assert_within_deadline(kit: Kit, start: float, deadline: float, attempt_timeout: float) -> None:
    """No attempt outlives the deadline and the whole request fits inside it."""
    for call in kit.upstream.calls:
        remaining = start + deadline - call.at
        assert call.timeout_seconds <= remaining + 1e-9, call
        assert call.timeout_seconds <= attempt_timeout, call
        assert remaining >= 0.05 - 1e-9, call
    assert kit.clock.now - start <= deadline + 1e-9


# --- one model, retries ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_success_first_try() -> None:
    kit = build({PRIMARY: [answer(PRIMARY)]})
    response = await kit.model.complete(chat())
    assert response.text == "from primary"
    assert (response.retries, response.fallback_used) == (0, False)
    assert kit.upstream.models_called() == [PRIMARY]
    assert kit.clock.sleeps == []
    assert kit.upstream.calls[0].fallbacks == ()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("failures", "ceilings"),
    [
        ([status(503)], [0.2]),
        ([status(500), status(502)], [0.2, 0.4]),
        ([status(504), failure("timeout"), failure("reset")], [0.2, 0.4, 0.8]),
        ([status(408), status(429)], [0.2, 0.4]),
        ([failure("connect"), failure("malformed")], [0.2, 0.4]),
    ],
    ids=[
        "503-then-ok",
        "500-502-then-ok",
        "504-timeout-reset-then-ok",
        "408-429-then-ok",
        "connect-malformed-then-ok",
    ],
)
async def test_retryable_failures_are_retried_with_full_jitter(
    failures: list[Outcome], ceilings: list[float]
) -> None:
    kit = build({PRIMARY: [*failures, answer(PRIMARY)]}, max_attempts=4, attempt_timeout=1.0)
    response = await kit.model.complete(chat())
    assert response.retries == len(failures)
    assert not response.fallback_used
    assert kit.upstream.models_called() == [PRIMARY] * (len(failures) + 1)
    assert len(kit.clock.sleeps) == len(ceilings)
    for slept, ceiling in zip(kit.clock.sleeps, ceilings, strict=True):
        assert 0.0 <= slept <= ceiling


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("failure_", "floor", "ceiling"),
    [
        (status(429, retry_after=2.0), 2.0, 2.0),
        (status(503, retry_after=3.0), 3.0, 3.0),
        (status(429, retry_after=0.0), 0.0, 0.2),
        (status(500, retry_after=2.0), 0.0, 0.2),
        (status(502, retry_after=2.0), 0.0, 0.2),
    ],
    ids=[
        "429-retry-after-is-a-floor",
        "503-retry-after-is-a-floor",
        "retry-after-zero-leaves-backoff",
        "500-retry-after-ignored",
        "502-retry-after-ignored",
    ],
)
async def test_retry_after_is_honoured_on_429_and_503(
    failure_: UpstreamError, floor: float, ceiling: float
) -> None:
    kit = build({PRIMARY: [failure_, answer(PRIMARY)]})
    response = await kit.model.complete(chat())
    assert response.retries == 1
    [slept] = kit.clock.sleeps
    assert floor <= slept <= ceiling


@pytest.mark.asyncio
async def test_retry_after_beyond_the_deadline_means_no_sleep_and_the_fallback() -> None:
    kit = build({PRIMARY: [status(429, retry_after=30.0)], BACKUP: [answer(BACKUP)]})
    response = await kit.model.complete(chat(fallbacks=(BACKUP,), timeout=10.0))
    assert kit.clock.sleeps == []
    assert kit.upstream.models_called() == [PRIMARY, BACKUP]
    assert (response.model, response.fallback_used, response.retries) == (BACKUP, True, 0)


@pytest.mark.asyncio
async def test_retry_after_beyond_the_deadline_everywhere_is_unavailable_with_the_hint() -> None:
    kit = build({PRIMARY: [status(429, retry_after=30.0)], BACKUP: [status(503, retry_after=45.0)]})
    with pytest.raises(UpstreamUnavailableError) as caught:
        await kit.model.complete(chat(fallbacks=(BACKUP,), timeout=10.0))
    assert kit.clock.sleeps == []
    assert kit.upstream.models_called() == [PRIMARY, BACKUP]
    # The rule: the smallest wait any upstream asked for, and at least default_retry_after.
    assert caught.value.retry_after == 30.0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        ([None, None], 1.0),
        ([0.2, None], 1.0),
        ([5.0, None], 5.0),
        ([5.0, 3.0], 3.0),
        ([3.0, 5.0], 3.0),
    ],
    ids=[
        "no-hint-is-default",
        "small-hint-raised-to-default",
        "one-hint",
        "smallest-wins",
        "smallest-wins-either-order",
    ],
)
async def test_unavailable_retry_after_is_the_smallest_hint_at_least_the_default(
    hints: list[float | None], expected: float
) -> None:
    primary, backup = (status(503, retry_after=hint) for hint in hints)
    kit = build({PRIMARY: [primary], BACKUP: [backup]}, max_attempts=1)
    with pytest.raises(UpstreamUnavailableError) as caught:
        await kit.model.complete(chat(fallbacks=(BACKUP,)))
    assert caught.value.retry_after == expected


@pytest.mark.asyncio
@pytest.mark.parametrize("code", [400, 401, 403, 404, 422], ids=lambda c: f"status{c}")
async def test_client_errors_are_rejected_at_once_without_fallback(code: int) -> None:
    kit = build({PRIMARY: [status(code)] * 10, BACKUP: [answer(BACKUP)]})
    for _ in range(10):
        with pytest.raises(UpstreamRejectedError):
            await kit.model.complete(chat(fallbacks=(BACKUP,)))
    assert kit.upstream.models_called() == [PRIMARY] * 10, "one call each, never the fallback"
    assert kit.clock.sleeps == []
    breaker = kit.model.upstream_state(PRIMARY).breaker
    assert (breaker.state, breaker.transitions) == (BreakerState.CLOSED, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["timeout", "reset", "connect", "malformed"])
@pytest.mark.parametrize("max_attempts", [1, 2, 3, 5])
async def test_transport_failures_make_at_most_max_attempts(kind: str, max_attempts: int) -> None:
    kit = build(
        then={PRIMARY: failure(kind)},
        max_attempts=max_attempts,
        attempt_timeout=2.0,
        breaker=NO_BREAKER,
    )
    with pytest.raises(UpstreamUnavailableError):
        await kit.model.complete(chat(timeout=60.0))
    assert kit.upstream.models_called() == [PRIMARY] * max_attempts
    assert_within_deadline(kit, START, 60.0, 2.0)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("then", "latency", "deadline", "attempt_timeout"),
    [
        ({m: failure("timeout") for m in (PRIMARY, BACKUP, SPARE)}, 0.0, 25.0, 10.0),
        ({m: failure("timeout") for m in (PRIMARY, BACKUP, SPARE)}, 0.0, 7.0, 10.0),
        ({m: status(503) for m in (PRIMARY, BACKUP, SPARE)}, 3.0, 20.0, 10.0),
        ({m: status(503, retry_after=4.0) for m in (PRIMARY, BACKUP, SPARE)}, 1.0, 20.0, 5.0),
        ({m: status(429, retry_after=9.9) for m in (PRIMARY, BACKUP, SPARE)}, 0.0, 10.0, 10.0),
        (
            {PRIMARY: failure("reset"), BACKUP: status(500), SPARE: failure("timeout")},
            0.4,
            9.0,
            4.0,
        ),
    ],
    ids=[
        "timeouts-everywhere",
        "timeouts-short-deadline",
        "slow-503s",
        "503-with-retry-after",
        "retry-after-almost-the-deadline",
        "mixed",
    ],
)
async def test_everything_fits_inside_one_deadline(
    then: dict[str, Outcome], latency: float, deadline: float, attempt_timeout: float
) -> None:
    kit = build(
        then=then,
        latency=latency,
        max_attempts=5,
        attempt_timeout=attempt_timeout,
        breaker=NO_BREAKER,
    )
    with pytest.raises(UpstreamUnavailableError):
        await kit.model.complete(chat(fallbacks=(BACKUP, SPARE), timeout=deadline))
    assert kit.upstream.calls, "something was tried"
    assert_within_deadline(kit, START, deadline, attempt_timeout)


@pytest.mark.asyncio
async def test_deadline_is_bounded_by_max_deadline() -> None:
    kit = build(
        then={PRIMARY: failure("timeout")},
        max_attempts=10,
        max_deadline=12.0,
        attempt_timeout=5.0,
        breaker=NO_BREAKER,
    )
    with pytest.raises(UpstreamUnavailableError):
        await kit.model.complete(chat(timeout=600.0))
    assert_within_deadline(kit, START, 12.0, 5.0)


@pytest.mark.asyncio
async def test_same_idempotency_key_on_every_retry_and_fallback() -> None:
    kit = build(
        {
            PRIMARY: [status(503), failure("reset"), status(500)],
            BACKUP: [status(502), answer(BACKUP)],
        }
    )
    response = await kit.model.complete(chat(fallbacks=(BACKUP,)))
    assert response.fallback_used
    assert kit.upstream.models_called() == [PRIMARY] * 3 + [BACKUP] * 2
    assert {call.idempotency_key for call in kit.upstream.calls} == {KEY}
    assert {call.fallbacks for call in kit.upstream.calls} == {()}


# --- breaker and fallbacks -------------------------------------------------------------------

BREAKER = BreakerConfig(consecutive_failures=3, cool_down_seconds=15.0, half_open_probes=2)


@pytest.mark.asyncio
async def test_breaker_opens_and_the_next_request_skips_the_model() -> None:
    kit = build(
        {PRIMARY: [status(503)] * 3}, then={BACKUP: answer(BACKUP)}, max_attempts=5, breaker=BREAKER
    )
    first = await kit.model.complete(chat(fallbacks=(BACKUP,)))
    assert kit.upstream.models_called() == [PRIMARY] * 3 + [BACKUP], (
        "the open breaker stops retries"
    )
    assert (first.model, first.fallback_used, first.retries) == (BACKUP, True, 2)
    assert kit.model.upstream_state(PRIMARY).breaker.state is BreakerState.OPEN

    kit.upstream.calls.clear()
    second = await kit.model.complete(chat(fallbacks=(BACKUP,)))
    assert kit.upstream.models_called() == [BACKUP], "zero calls to the open model"
    assert (second.model, second.fallback_used, second.retries) == (BACKUP, True, 0)
    assert ("breaker", PRIMARY, "open") in kit.observer.events


@pytest.mark.asyncio
async def test_open_breaker_without_fallback_is_unavailable_with_its_retry_in() -> None:
    kit = build({PRIMARY: [status(503)] * 3}, max_attempts=3, breaker=BREAKER)
    with pytest.raises(UpstreamUnavailableError):
        await kit.model.complete(chat())
    kit.upstream.calls.clear()
    kit.clock.now += 5.0
    opened_at = kit.model.upstream_state(PRIMARY).breaker.opened_at
    with pytest.raises(UpstreamUnavailableError) as caught:
        await kit.model.complete(chat())
    assert kit.upstream.calls == []
    assert caught.value.retry_after == pytest.approx(opened_at + 15.0 - kit.clock.now)


@pytest.mark.asyncio
async def test_half_open_probes_close_the_breaker_after_cool_down() -> None:
    kit = build(
        {PRIMARY: [status(503)] * 3},
        then={PRIMARY: answer(PRIMARY), BACKUP: answer(BACKUP)},
        max_attempts=3,
        breaker=BREAKER,
    )
    await kit.model.complete(chat(fallbacks=(BACKUP,)))
    breaker = kit.model.upstream_state(PRIMARY).breaker
    assert breaker.state is BreakerState.OPEN

    kit.clock.now = breaker.opened_at + 14.9
    kit.upstream.calls.clear()
    assert (await kit.model.complete(chat(fallbacks=(BACKUP,)))).model == BACKUP
    assert kit.upstream.models_called() == [BACKUP]

    kit.clock.now = breaker.opened_at + 15.0
    kit.upstream.calls.clear()
    probe = await kit.model.complete(chat(fallbacks=(BACKUP,)))
    assert (probe.model, probe.fallback_used) == (PRIMARY, False)
    assert breaker_state(kit, PRIMARY) is BreakerState.HALF_OPEN, "one of two probes succeeded"
    second = await kit.model.complete(chat(fallbacks=(BACKUP,)))
    assert second.model == PRIMARY
    assert breaker_state(kit, PRIMARY) is BreakerState.CLOSED
    assert kit.upstream.models_called() == [PRIMARY, PRIMARY]
    breaker_events = [e for e in kit.observer.events if e[0] == "breaker"]
    assert breaker_events == [
        ("breaker", PRIMARY, "open"),
        ("breaker", PRIMARY, "half_open"),
        ("breaker", PRIMARY, "closed"),
    ]


@pytest.mark.asyncio
async def test_failed_probe_reopens_without_retrying() -> None:
    kit = build(
        then={PRIMARY: status(503), BACKUP: answer(BACKUP)}, max_attempts=5, breaker=BREAKER
    )
    await kit.model.complete(chat(fallbacks=(BACKUP,)))
    breaker = kit.model.upstream_state(PRIMARY).breaker
    kit.clock.now = breaker.opened_at + 15.0
    kit.upstream.calls.clear()
    response = await kit.model.complete(chat(fallbacks=(BACKUP,)))
    assert response.model == BACKUP
    assert kit.upstream.models_called() == [PRIMARY, BACKUP], "one probe, no retry"
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_at == pytest.approx(kit.clock.now)


@pytest.mark.asyncio
async def test_fallback_chain_in_order() -> None:
    kit = build(
        then={PRIMARY: status(503), BACKUP: failure("timeout"), SPARE: answer(SPARE)},
        max_attempts=2,
        attempt_timeout=3.0,
    )
    response = await kit.model.complete(chat(fallbacks=(BACKUP, SPARE)))
    assert kit.upstream.models_called() == [PRIMARY, PRIMARY, BACKUP, BACKUP, SPARE]
    assert (response.model, response.fallback_used, response.retries) == (SPARE, True, 2)


@pytest.mark.asyncio
async def test_all_models_failing_is_unavailable_within_the_deadline() -> None:
    kit = build(
        then={PRIMARY: status(503), BACKUP: status(500), SPARE: failure("reset")}, latency=0.5
    )
    with pytest.raises(UpstreamUnavailableError) as caught:
        await kit.model.complete(chat(fallbacks=(BACKUP, SPARE), timeout=10.0))
    assert set(kit.upstream.models_called()) == {PRIMARY, BACKUP, SPARE}
    assert caught.value.retry_after >= 1.0
    assert_within_deadline(kit, START, 10.0, 10.0)


# --- rate limits -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_rate_limit_waits_when_the_deadline_allows() -> None:
    kit = build(then={PRIMARY: answer(PRIMARY)}, rpm=1)
    await kit.model.complete(chat())
    kit.clock.now += 30.0
    response = await kit.model.complete(chat(timeout=60.0))
    assert response.model == PRIMARY
    assert kit.clock.sleeps == [pytest.approx(30.0)]
    assert kit.upstream.calls[1].at == pytest.approx(START + 60.0)
    assert ("rate_limit", PRIMARY, "30.000", "False") in kit.observer.events


@pytest.mark.asyncio
async def test_rate_limit_past_the_deadline_is_rate_limited() -> None:
    kit = build(then={PRIMARY: answer(PRIMARY)}, rpm=1)
    await kit.model.complete(chat())
    kit.clock.now += 30.0
    with pytest.raises(RateLimitedError) as caught:
        await kit.model.complete(chat(timeout=10.0))
    assert kit.upstream.models_called() == [PRIMARY], "no upstream call for the refused one"
    assert kit.clock.sleeps == []
    assert caught.value.retry_after == pytest.approx(30.0)
    assert ("rate_limit", PRIMARY, "0.000", "True") in kit.observer.events


@pytest.mark.asyncio
async def test_rate_limited_model_falls_back_to_one_with_room() -> None:
    kit = build(
        then={PRIMARY: answer(PRIMARY), BACKUP: answer(BACKUP)}, limits={PRIMARY: (1.0, 0.0)}
    )
    await kit.model.complete(chat(fallbacks=(BACKUP,)))
    response = await kit.model.complete(chat(fallbacks=(BACKUP,), timeout=10.0))
    assert (response.model, response.fallback_used) == (BACKUP, True)
    assert kit.clock.sleeps == []


@pytest.mark.asyncio
async def test_rate_limit_and_upstream_failure_together_are_unavailable() -> None:
    kit = build(
        then={PRIMARY: answer(PRIMARY), BACKUP: status(503)},
        limits={PRIMARY: (1.0, 0.0)},
        max_attempts=1,
    )
    await kit.model.complete(chat(fallbacks=(BACKUP,)))
    with pytest.raises(UpstreamUnavailableError):
        await kit.model.complete(chat(fallbacks=(BACKUP,), timeout=10.0))


# --- retry budget ----------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("breaker", [BreakerConfig(), NO_BREAKER], ids=["breaker", "no-breaker"])
@pytest.mark.parametrize("min_per_second", [0.0, 1.0], ids=["no-refill", "refill"])
async def test_retry_budget_bounds_upstream_calls(
    breaker: BreakerConfig, min_per_second: float
) -> None:
    kit = build(
        then={PRIMARY: status(503)},
        max_attempts=3,
        breaker=breaker,
        budget_min_per_second=min_per_second,
    )
    for _ in range(50):
        with pytest.raises(UpstreamUnavailableError):
            await kit.model.complete(chat())
        kit.clock.now += 1.0
    elapsed = kit.clock.now - START
    calls = len(kit.upstream.calls)
    assert calls <= 50 * 1.2 + 10.0 + elapsed * min_per_second + 1
    assert calls < 50 * 3, "the budget (or the breaker) cut retries"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("max_attempts", "outcome", "deadline"),
    [(3, status(503), 30.0), (5, status(503, retry_after=2.0), 5.0)],
    ids=["stopped-by-max-attempts", "stopped-by-deadline"],
)
async def test_a_retry_never_made_costs_no_budget(
    max_attempts: int, outcome: UpstreamError, deadline: float
) -> None:
    kit = build(
        then={PRIMARY: outcome},
        max_attempts=max_attempts,
        breaker=NO_BREAKER,
        budget_ratio=0.0,
        budget_min_per_second=0.0,
        budget_reserve=3.0,
    )
    with pytest.raises(UpstreamUnavailableError):
        await kit.model.complete(chat(timeout=deadline))
    assert len(kit.upstream.calls) == 3
    spent = 3.0 - kit.model.upstream_state(PRIMARY).budget.balance
    assert spent == pytest.approx(2.0), "one token per retry actually made"


@pytest.mark.asyncio
async def test_observer_sees_attempts_retries_breaker_and_rate_limits() -> None:
    kit = build(
        {
            PRIMARY: [
                answer(PRIMARY),
                status(429, retry_after=1.0),
                status(503),
                status(503, retry_after=2.0),
                status(503),
            ]
        },
        then={BACKUP: answer(BACKUP)},
        limits={PRIMARY: (1.0, 0.0)},
        max_attempts=4,
        max_deadline=200.0,
        breaker=BreakerConfig(consecutive_failures=3),
    )
    await kit.model.complete(chat(fallbacks=(BACKUP,)))
    kit.clock.now += 30.0
    # 100 s: the primary's slice (half of it) has room for the 30 s rate-limit wait.
    response = await kit.model.complete(chat(fallbacks=(BACKUP,), timeout=100.0))
    assert response.model == BACKUP
    kinds = [(e[0], *e[1:3]) if e[0] != "retry" else (e[0], e[1]) for e in kit.observer.events]
    assert kinds == [
        ("attempt", PRIMARY, "ok"),
        ("rate_limit", PRIMARY, "30.000"),
        ("throttled", PRIMARY, "1.0"),
        ("attempt", PRIMARY, "429"),
        ("retry", PRIMARY),
        ("attempt", PRIMARY, "503"),
        ("retry", PRIMARY),
        ("attempt", PRIMARY, "503"),
        ("retry", PRIMARY),
        ("breaker", PRIMARY, "open"),
        ("attempt", PRIMARY, "503"),
        ("attempt", BACKUP, "ok"),
    ]
    retry_waits = [float(e[2]) for e in kit.observer.events if e[0] == "retry"]
    assert retry_waits[0] >= 1.0 and retry_waits[2] >= 2.0, "Retry-After floor reported"
