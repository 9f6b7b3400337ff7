"""Back-pressure, long pauses, fallback slices and the request's deadline (fake clock, instant)."""

from __future__ import annotations

import pytest

from service.errors import UpstreamUnavailableError
from service.llm.resilience.breaker import BreakerConfig, BreakerState
from service.llm.resilience.deadline import Deadline

from .test_caller import (
    BACKUP,
    NO_BREAKER,
    PRIMARY,
    SPARE,
    START,
    Outcome,
    answer,
    breaker_state,
    build,
    chat,
    failure,
    status,
)

#: Opens on the first failure: anything counted as a failure shows at once.
TOUCHY = BreakerConfig(consecutive_failures=1, min_calls=1, failure_rate=0.01)

# --- 429 is back-pressure -------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("retry_after", [1.0, None], ids=["with-retry-after", "without"])
async def test_429s_never_open_the_breaker(retry_after: float | None) -> None:
    script: list[Outcome] = [status(429, retry_after)] * 5
    kit = build({PRIMARY: [*script, answer(PRIMARY)]}, breaker=TOUCHY)
    response = await kit.model.complete(chat())
    assert (response.model, response.retries) == (PRIMARY, 5)
    breaker = kit.model.upstream_state(PRIMARY).breaker
    assert (breaker.state, breaker.transitions, breaker.consecutive) == (BreakerState.CLOSED, 0, 0)
    throttled = [e for e in kit.observer.events if e[0] == "throttled"]
    assert len(throttled) == 5, "counted apart, as throttles"


@pytest.mark.asyncio
async def test_a_503_still_opens_the_touchy_breaker() -> None:
    """The control for the test above: the breaker does count real failures."""
    kit = build({PRIMARY: [status(503)]}, then={BACKUP: answer(BACKUP)}, breaker=TOUCHY)
    await kit.model.complete(chat(fallbacks=(BACKUP,)))
    assert breaker_state(kit, PRIMARY) is BreakerState.OPEN


@pytest.mark.asyncio
async def test_half_429_traffic_keeps_answering_where_it_used_to_open_the_breaker() -> None:
    """Issue 9: 50 % 429 + Retry-After 1 over 20 sequential requests opened the breaker."""
    script: list[Outcome] = [status(429, 1.0), answer(PRIMARY)] * 20
    kit = build({PRIMARY: script})
    for _ in range(20):
        response = await kit.model.complete(chat(timeout=20.0))
        assert response.model == PRIMARY
    assert breaker_state(kit, PRIMARY) is BreakerState.CLOSED


@pytest.mark.asyncio
async def test_429_retries_are_not_charged_to_the_retry_budget() -> None:
    kit = build(
        {PRIMARY: [*[status(429, 0.5)] * 4, answer(PRIMARY), status(503), answer(PRIMARY)]},
        budget_reserve=0.0,
        budget_ratio=0.0,
        breaker=NO_BREAKER,
    )
    response = await kit.model.complete(chat())
    assert response.retries == 4, "throttles retried with an empty budget"
    with pytest.raises(UpstreamUnavailableError):
        await kit.model.complete(chat())  # the 503 is not retried: the budget is empty
    assert len(kit.upstream.calls) == 6


@pytest.mark.asyncio
async def test_throttled_attempts_have_their_own_bound() -> None:
    kit = build(
        {PRIMARY: [*[status(429, 0.1)] * 3, answer(PRIMARY)]},
        max_throttled_attempts=3,
        max_attempts=1,
    )
    with pytest.raises(UpstreamUnavailableError):
        await kit.model.complete(chat(timeout=30.0))
    assert len(kit.upstream.calls) == 3


@pytest.mark.asyncio
async def test_429_and_failures_are_bounded_separately() -> None:
    script: list[Outcome] = [
        status(429, 0.1),
        status(503),
        status(429, 0.1),
        status(503),
        answer(PRIMARY),
    ]
    kit = build({PRIMARY: script}, max_attempts=2, breaker=NO_BREAKER)
    with pytest.raises(UpstreamUnavailableError):
        await kit.model.complete(chat())
    assert len(kit.upstream.calls) == 4, "the second 503 used the last failure attempt"


@pytest.mark.asyncio
async def test_each_throttled_retry_waits_at_least_retry_after() -> None:
    kit = build({PRIMARY: [*[status(429, 1.0)] * 3, answer(PRIMARY)]})
    await kit.model.complete(chat(timeout=20.0))
    assert len(kit.clock.sleeps) == 3 and min(kit.clock.sleeps) >= 1.0


@pytest.mark.asyncio
async def test_persistent_429_ends_at_the_deadline_not_later() -> None:
    kit = build(then={PRIMARY: status(429, 1.0)}, max_throttled_attempts=50)
    with pytest.raises(UpstreamUnavailableError) as caught:
        await kit.model.complete(chat(timeout=5.0))
    assert kit.clock.now - START <= 5.0
    assert 3 <= len(kit.upstream.calls) <= 5, "about one call per Retry-After within 5 s"
    assert caught.value.retry_after == 1.0
    assert breaker_state(kit, PRIMARY) is BreakerState.CLOSED


# --- long pauses and the cap ----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("code", [429, 503])
async def test_a_pause_longer_than_the_deadline_holds_the_breaker_for_that_long(code: int) -> None:
    kit = build({PRIMARY: [status(code, 600.0)]}, then={BACKUP: answer(BACKUP)})
    first = await kit.model.complete(chat(fallbacks=(BACKUP,), timeout=20.0))
    assert first.model == BACKUP and kit.clock.sleeps == [], "no sleeping towards 600 s"
    assert breaker_state(kit, PRIMARY) is BreakerState.OPEN
    kit.clock.now += 100.0
    with pytest.raises(UpstreamUnavailableError) as caught:
        await kit.model.complete(chat(timeout=20.0))
    assert caught.value.retry_after == pytest.approx(500.0), "the upstream's wait, not 15 s"
    assert len(kit.upstream.calls) == 2, "no traffic to a paused model"


@pytest.mark.asyncio
async def test_after_the_pause_half_open_probes_recover_the_model() -> None:
    kit = build(
        {PRIMARY: [status(429, 600.0)]},
        then={PRIMARY: answer(PRIMARY)},
        breaker=BreakerConfig(half_open_probes=1),
    )
    with pytest.raises(UpstreamUnavailableError):
        await kit.model.complete(chat(timeout=20.0))
    kit.clock.now += 599.0
    with pytest.raises(UpstreamUnavailableError):
        await kit.model.complete(chat(timeout=20.0))
    kit.clock.now += 1.0
    response = await kit.model.complete(chat(timeout=20.0))
    assert response.model == PRIMARY
    assert breaker_state(kit, PRIMARY) is BreakerState.CLOSED


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("asked", "expected"), [(1e9, 3600.0), (7200.0, 3600.0), (600.0, 600.0)], ids=str
)
async def test_retry_after_is_capped_everywhere(asked: float, expected: float) -> None:
    kit = build({PRIMARY: [status(429, asked)]})
    with pytest.raises(UpstreamUnavailableError) as caught:
        await kit.model.complete(chat(timeout=20.0))
    assert caught.value.retry_after == expected
    assert kit.model.upstream_state(PRIMARY).breaker.retry_in(kit.clock.now) == expected
    assert ("throttled", PRIMARY, str(expected)) in kit.observer.events


@pytest.mark.asyncio
async def test_a_short_retry_after_that_does_not_fit_moves_on_without_pausing() -> None:
    """5 s > the 4 s slice, but shorter than the 8 s deadline: other requests may wait."""
    kit = build({PRIMARY: [status(429, 5.0)]}, then={BACKUP: answer(BACKUP)})
    response = await kit.model.complete(chat(fallbacks=(BACKUP,), timeout=8.0))
    assert response.model == BACKUP
    assert breaker_state(kit, PRIMARY) is BreakerState.CLOSED


# --- fallback slices ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_hung_primary_leaves_the_fallback_half_the_deadline() -> None:
    kit = build(
        then={PRIMARY: failure("timeout"), BACKUP: answer(BACKUP)},
        attempt_timeout=30.0,
        breaker=NO_BREAKER,
    )
    response = await kit.model.complete(chat(fallbacks=(BACKUP,), timeout=20.0))
    assert (response.model, response.fallback_used) == (BACKUP, True)
    assert kit.upstream.calls[0].timeout_seconds == pytest.approx(10.0)
    assert kit.clock.now - START == pytest.approx(10.0)


@pytest.mark.asyncio
async def test_three_hung_models_each_get_a_third() -> None:
    kit = build(
        then={m: failure("timeout") for m in (PRIMARY, BACKUP)} | {SPARE: answer(SPARE)},
        attempt_timeout=60.0,
        breaker=NO_BREAKER,
    )
    response = await kit.model.complete(chat(fallbacks=(BACKUP, SPARE), timeout=30.0))
    assert response.model == SPARE
    assert [round(c.at - START, 6) for c in kit.upstream.calls] == [0.0, 10.0, 20.0]


@pytest.mark.asyncio
async def test_time_a_fast_failure_leaves_flows_to_the_next_model() -> None:
    kit = build(
        {PRIMARY: [status(500)] * 3},
        then={BACKUP: failure("timeout"), SPARE: answer(SPARE)},
        attempt_timeout=60.0,
        backoff_base=0.0,
        breaker=NO_BREAKER,
    )
    await kit.model.complete(chat(fallbacks=(BACKUP, SPARE), timeout=30.0))
    backup_call = next(c for c in kit.upstream.calls if c.model == BACKUP)
    assert backup_call.timeout_seconds == pytest.approx(15.0), "half of the 30 s left"


# --- the request's deadline -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_request_deadline_bounds_the_model_call() -> None:
    kit = build(then={PRIMARY: failure("timeout")}, attempt_timeout=30.0, breaker=NO_BREAKER)
    request = chat(timeout=20.0)
    deadline = Deadline(START + 3.0, kit.clock)  # 17 s already spent queueing and retrieving
    with pytest.raises(UpstreamUnavailableError):
        await kit.model.complete(type(request)(**{**vars(request), "deadline": deadline}))
    assert kit.clock.now - START == pytest.approx(3.0)
    assert all(call.timeout_seconds <= 3.0 for call in kit.upstream.calls)


@pytest.mark.asyncio
async def test_a_passed_deadline_calls_nothing() -> None:
    kit = build(then={PRIMARY: answer(PRIMARY)})
    request = chat(timeout=20.0)
    deadline = Deadline(START - 1.0, kit.clock)
    with pytest.raises(UpstreamUnavailableError, match="deadline reached"):
        await kit.model.complete(type(request)(**{**vars(request), "deadline": deadline}))
    assert kit.upstream.calls == []
