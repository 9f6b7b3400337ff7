"""The same behaviour from both idempotency stores: memory (fake clock) and Redis (real server)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
import redis.asyncio

from service.errors import IdempotencyKeyInFlightError, IdempotencyKeyReusedError
from service.http.idempotency import IdempotencyStore, build_idempotency_store
from service.http.idempotency_keys import Replay, Started, StoredResponse
from service.http.idempotency_memory import MemoryIdempotencyStore
from service.http.idempotency_redis import RedisIdempotencyStore
from tests.support.redis import REDIS_SERVER, run_redis_server

LEASE = 0.2  # seconds; short so the Redis runs can wait it out for real
TTL = 0.3
WAIT = 0.35  # longer than LEASE and TTL
LONG = 60.0

RESPONSE = StoredResponse(
    status=200,
    headers=(("content-type", "application/json"), ("x-prompt-version", "1.1.0")),
    body=b'{"answer":"Refunds take 5 days.","citations":[]}\n\x00\xff',
)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class StoreKit:
    """A store under test, a second handle on the same backing data, and a way to let time pass.

    For Redis ``peer`` is another store over another client (a second replica); for memory
    it is the same store, since one process holds one.
    """

    store: IdempotencyStore
    peer: IdempotencyStore
    wait: Callable[[float], Awaitable[None]]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A redis-server for the whole session; skipped only when the binary is missing."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (/usr/bin/redis-server; `make system-deps`)")
    with run_redis_server() as url:
        yield url


@pytest_asyncio.fixture(
    params=["memory", pytest.param("redis", marks=pytest.mark.integration)],
)
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[StoreKit]:
    if request.param == "memory":
        clock = FakeClock()

        async def advance(seconds: float) -> None:
            clock.now += seconds

        memory = MemoryIdempotencyStore(clock=clock)
        yield StoreKit(store=memory, peer=memory, wait=advance)
        await memory.close()
        return

    url: str = request.getfixturevalue("redis_url")
    prefix = f"test:{uuid.uuid4().hex}:"  # a namespace of its own per test
    store = RedisIdempotencyStore(redis.asyncio.from_url(url), prefix=prefix)
    peer = RedisIdempotencyStore(redis.asyncio.from_url(url), prefix=prefix)
    yield StoreKit(store=store, peer=peer, wait=asyncio.sleep)
    await store.close()
    await peer.close()


async def _started(store: IdempotencyStore, scope: str, fingerprint: str, lease: float) -> str:
    result = await store.begin(scope, fingerprint, lease)
    assert isinstance(result, Started)
    return result.token


@pytest.mark.asyncio
async def test_first_begin_starts_and_completion_replays_byte_for_byte(kit: StoreKit) -> None:
    token = await _started(kit.store, "s:k", "fp", LONG)
    assert await kit.store.complete("s:k", token, "fp", RESPONSE, LONG)
    replay = await kit.store.begin("s:k", "fp", LONG)
    assert replay == Replay(RESPONSE)
    assert isinstance(replay, Replay)
    assert replay.response.status == RESPONSE.status
    assert replay.response.headers == RESPONSE.headers
    assert replay.response.body == RESPONSE.body


@pytest.mark.asyncio
async def test_other_fingerprint_while_in_flight_is_reused(kit: StoreKit) -> None:
    await _started(kit.store, "s:k", "fp", LONG)
    with pytest.raises(IdempotencyKeyReusedError):
        await kit.store.begin("s:k", "other", LONG)


@pytest.mark.asyncio
async def test_other_fingerprint_after_completion_is_reused(kit: StoreKit) -> None:
    token = await _started(kit.store, "s:k", "fp", LONG)
    await kit.store.complete("s:k", token, "fp", RESPONSE, LONG)
    with pytest.raises(IdempotencyKeyReusedError):
        await kit.store.begin("s:k", "other", LONG)


@pytest.mark.asyncio
async def test_same_fingerprint_while_in_flight_is_in_flight(kit: StoreKit) -> None:
    await _started(kit.store, "s:k", "fp", LONG)
    with pytest.raises(IdempotencyKeyInFlightError):
        await kit.store.begin("s:k", "fp", LONG)


@pytest.mark.asyncio
async def test_scopes_are_independent(kit: StoreKit) -> None:
    await _started(kit.store, "alice:k", "fp", LONG)
    await _started(kit.store, "bob:k", "other", LONG)


@pytest.mark.asyncio
async def test_an_expired_lease_frees_the_key(kit: StoreKit) -> None:
    await _started(kit.store, "s:k", "fp", LEASE)
    await kit.wait(WAIT)
    await _started(kit.store, "s:k", "other", LONG)


@pytest.mark.asyncio
async def test_release_frees_the_key(kit: StoreKit) -> None:
    token = await _started(kit.store, "s:k", "fp", LONG)
    assert await kit.store.release("s:k", token)
    await _started(kit.store, "s:k", "fp", LONG)


@pytest.mark.asyncio
async def test_release_with_a_wrong_token_or_after_completion_does_nothing(kit: StoreKit) -> None:
    token = await _started(kit.store, "s:k", "fp", LONG)
    assert not await kit.store.release("s:k", "not-the-token")
    assert not await kit.store.release("nobody:k", token)
    with pytest.raises(IdempotencyKeyInFlightError):
        await kit.store.begin("s:k", "fp", LONG)
    await kit.store.complete("s:k", token, "fp", RESPONSE, LONG)
    assert not await kit.store.release("s:k", token)
    assert await kit.store.begin("s:k", "fp", LONG) == Replay(RESPONSE)


@pytest.mark.asyncio
async def test_complete_with_a_stale_token_does_nothing(kit: StoreKit) -> None:
    stale = await _started(kit.store, "s:k", "fp", LEASE)
    await kit.wait(WAIT)
    assert not await kit.store.complete("s:k", stale, "fp", RESPONSE, LONG)
    assert isinstance(await kit.store.begin("s:k", "fp", LONG), Started)  # nothing was stored
    assert not await kit.store.complete("s:k", stale, "fp", RESPONSE, LONG)
    with pytest.raises(IdempotencyKeyInFlightError):  # the new lease is untouched
        await kit.store.begin("s:k", "fp", LONG)


@pytest.mark.asyncio
async def test_complete_twice_or_with_another_fingerprint_does_nothing(kit: StoreKit) -> None:
    token = await _started(kit.store, "s:k", "fp", LONG)
    assert not await kit.store.complete("s:k", token, "other", RESPONSE, LONG)
    assert await kit.store.complete("s:k", token, "fp", RESPONSE, LONG)
    second = StoredResponse(status=500, headers=(), body=b"")
    assert not await kit.store.complete("s:k", token, "fp", second, LONG)
    assert await kit.store.begin("s:k", "fp", LONG) == Replay(RESPONSE)


@pytest.mark.asyncio
async def test_a_completed_entry_expires_after_its_ttl(kit: StoreKit) -> None:
    token = await _started(kit.store, "s:k", "fp", LONG)
    await kit.store.complete("s:k", token, "fp", RESPONSE, TTL)
    assert await kit.store.begin("s:k", "fp", LONG) == Replay(RESPONSE)
    await kit.wait(WAIT)
    await _started(kit.store, "s:k", "other", LONG)


@pytest.mark.asyncio
async def test_completion_replaces_the_lease_expiry_with_the_ttl(kit: StoreKit) -> None:
    token = await _started(kit.store, "s:k", "fp", LEASE)
    await kit.store.complete("s:k", token, "fp", RESPONSE, LONG)
    await kit.wait(WAIT)
    assert await kit.store.begin("s:k", "fp", LONG) == Replay(RESPONSE)


@pytest.mark.asyncio
async def test_replicas_share_keys(kit: StoreKit) -> None:
    token = await _started(kit.store, "s:k", "fp", LONG)
    with pytest.raises(IdempotencyKeyInFlightError):
        await kit.peer.begin("s:k", "fp", LONG)
    with pytest.raises(IdempotencyKeyReusedError):
        await kit.peer.begin("s:k", "other", LONG)
    assert await kit.peer.complete("s:k", token, "fp", RESPONSE, LONG)
    assert await kit.store.begin("s:k", "fp", LONG) == Replay(RESPONSE)
    assert await kit.peer.begin("s:k", "fp", LONG) == Replay(RESPONSE)


@pytest.mark.asyncio
async def test_concurrent_begins_start_exactly_once(kit: StoreKit) -> None:
    stores = [kit.store, kit.peer] * 10
    results = await asyncio.gather(
        *(store.begin("s:k", "fp", LONG) for store in stores), return_exceptions=True
    )
    started = [result for result in results if isinstance(result, Started)]
    in_flight = [r for r in results if isinstance(r, IdempotencyKeyInFlightError)]
    assert len(started) == 1
    assert len(in_flight) == 19


@pytest.mark.asyncio
@pytest.mark.parametrize("lease", [0.0, -1.0], ids=["zero", "negative"])
async def test_non_positive_durations_are_refused(kit: StoreKit, lease: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        await kit.store.begin("s:k", "fp", lease)


# --- memory-only: bounded size ------------------------------------------------------------


@pytest.mark.asyncio
async def test_memory_store_evicts_expired_entries_first_then_the_oldest() -> None:
    clock = FakeClock()
    store = MemoryIdempotencyStore(clock=clock, max_entries=3)
    await store.begin("old", "fp", LONG)
    await store.begin("short", "fp", LEASE)
    await store.begin("young", "fp", LONG)
    clock.now += WAIT  # "short" has expired
    await store.begin("new-1", "fp", LONG)
    with pytest.raises(IdempotencyKeyInFlightError):  # "old" survived: "short" went first
        await store.begin("old", "fp", LONG)
    await store.begin("new-2", "fp", LONG)  # full of live entries: the oldest goes
    assert len(store) == 3
    assert isinstance(await store.begin("old", "fp", LONG), Started)  # evicts "young"
    with pytest.raises(IdempotencyKeyInFlightError):
        await store.begin("new-1", "fp", LONG)


@pytest.mark.asyncio
async def test_memory_store_stays_bounded_under_churn() -> None:
    clock = FakeClock()
    store = MemoryIdempotencyStore(clock=clock, max_entries=50)
    for index in range(5000):
        token = await _started(store, f"s:{index}", "fp", LEASE)
        await store.complete(f"s:{index}", token, "fp", RESPONSE, LONG)
        clock.now += 0.01
    assert len(store) == 50
    assert len(store._expiries) <= 2 * 50 + 1024 + 1


# --- factory ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_factory_without_url_builds_a_memory_store() -> None:
    store = build_idempotency_store(None)
    assert isinstance(store, MemoryIdempotencyStore)
    await store.close()


@pytest.mark.integration
@pytest.mark.asyncio
async def test_factory_with_url_builds_a_working_redis_store(redis_url: str) -> None:
    store = build_idempotency_store(redis_url)
    assert isinstance(store, RedisIdempotencyStore)
    scope = f"factory:{uuid.uuid4().hex}"
    try:
        token = await _started(store, scope, "fp", LONG)
        assert await store.complete(scope, token, "fp", RESPONSE, LONG)
        assert await store.begin(scope, "fp", LONG) == Replay(RESPONSE)
    finally:
        await store.close()
