"""The same behaviour from both feedback stores (memory with a fake clock, a real Redis), and
the Redis store's failures (down, hung, garbage) raised as the service's 503 error only."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
import redis.asyncio

from service.errors import FeedbackUnavailableError
from service.http.feedback import FeedbackStore
from service.http.feedback_memory import MemoryFeedbackStore
from service.http.feedback_records import Answered
from service.http.feedback_redis import RedisFeedbackStore
from tests.support.net import free_port
from tests.support.redis import run_redis_server

ANSWERED = Answered("policy-qa", "1.1.0", "shop")
TTL = 0.3  # seconds; short so the Redis runs can wait it out for real
LONG = 60.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class StoreKit:
    """A store, a second handle on the same data (another replica for Redis), and time."""

    store: FeedbackStore
    peer: FeedbackStore
    wait: Callable[[float], Awaitable[None]]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with run_redis_server() as url:
        yield url


@pytest_asyncio.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[StoreKit]:
    if request.param == "memory":
        clock = FakeClock()

        async def advance(seconds: float) -> None:
            clock.now += seconds

        memory = MemoryFeedbackStore(clock=clock)
        yield StoreKit(memory, memory, advance)
        return
    url: str = request.getfixturevalue("redis_url")
    prefix = f"test:{uuid.uuid4().hex}:"
    one, two = redis.asyncio.from_url(url), redis.asyncio.from_url(url)
    store, peer = RedisFeedbackStore(one, prefix=prefix), RedisFeedbackStore(two, prefix=prefix)
    yield StoreKit(store, peer, asyncio.sleep)
    await one.aclose()
    await two.aclose()


@pytest.mark.asyncio
async def test_a_remembered_answer_is_fetched_by_another_replica(kit: StoreKit) -> None:
    assert await kit.store.remember("k", ANSWERED, LONG)
    assert await kit.peer.fetch("k") == ANSWERED
    assert await kit.peer.fetch("other") is None


@pytest.mark.asyncio
async def test_the_first_answer_with_a_key_keeps_it(kit: StoreKit) -> None:
    assert await kit.store.remember("k", ANSWERED, LONG)
    assert not await kit.peer.remember("k", Answered("other", "9.9.9", "shop"), LONG)
    assert await kit.store.fetch("k") == ANSWERED


@pytest.mark.asyncio
async def test_rate_returns_the_record_before_and_keeps_the_new_score(kit: StoreKit) -> None:
    await kit.store.remember("k", ANSWERED, LONG)
    assert await kit.store.rate("k", 1.0) == ANSWERED
    assert await kit.peer.rate("k", -0.25) == Answered("policy-qa", "1.1.0", "shop", 1.0)
    assert await kit.store.fetch("k") == Answered("policy-qa", "1.1.0", "shop", -0.25)


@pytest.mark.asyncio
async def test_rating_an_unknown_key_changes_nothing(kit: StoreKit) -> None:
    assert await kit.store.rate("missing", 1.0) is None
    assert await kit.store.fetch("missing") is None


@pytest.mark.asyncio
async def test_answers_expire_after_their_ttl_even_once_rated(kit: StoreKit) -> None:
    await kit.store.remember("k", ANSWERED, TTL)
    await kit.store.rate("k", 0.5)  # a rating keeps the expiry (KEEPTTL), never extends it
    await kit.wait(TTL / 3)
    assert await kit.store.fetch("k") is not None
    await kit.wait(TTL)
    assert await kit.store.fetch("k") is None
    assert await kit.store.rate("k", 1.0) is None


@pytest.mark.asyncio
async def test_concurrent_ratings_of_one_answer_see_each_other(kit: StoreKit) -> None:
    await kit.store.remember("k", ANSWERED, LONG)
    stores = [kit.store, kit.peer] * 10
    befores = await asyncio.gather(*(s.rate("k", 1.0) for s in stores))
    assert sum(1 for before in befores if before is not None and before.score is None) == 1


def test_the_memory_store_forgets_the_oldest_when_full() -> None:
    store = MemoryFeedbackStore(clock=FakeClock(), max_entries=3)

    async def flood() -> None:
        for n in range(10):
            await store.remember(f"k{n}", ANSWERED, LONG)
        assert len(store) == 3 and store.evicted == 7
        assert await store.fetch("k6") is None
        assert [await store.fetch(f"k{n}") for n in (7, 8, 9)] == [ANSWERED] * 3

    asyncio.run(flood())


def test_the_memory_store_refuses_a_zero_cap() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryFeedbackStore(max_entries=0)


# --- Redis failures -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_redis_down_is_the_services_503_error_without_the_url() -> None:
    port = free_port()  # nothing listens there
    client = redis.asyncio.from_url(f"redis://:hunter2@127.0.0.1:{port}/0")
    store = RedisFeedbackStore(client)
    for call in (
        store.remember("k", ANSWERED, LONG),
        store.fetch("k"),
        store.rate("k", 1.0),
    ):
        with pytest.raises(FeedbackUnavailableError) as raised:
            await call
        assert "hunter2" not in str(raised.value) and str(port) not in str(raised.value)
    await client.aclose()


@pytest_asyncio.fixture
async def hung_redis() -> AsyncIterator[str]:
    """A server that accepts connections and never answers (a hung Redis)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read(-1)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()


@pytest.mark.asyncio
async def test_a_hung_redis_fails_within_the_timeout(hung_redis: str) -> None:
    client = redis.asyncio.from_url(hung_redis, socket_timeout=30)
    store = RedisFeedbackStore(client, timeout_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(FeedbackUnavailableError, match=r"no answer within 0\.2 s"):
        await store.fetch("k")
    assert time.monotonic() - started < 2.0
    await client.aclose()


@pytest.mark.integration
@pytest.mark.asyncio
async def test_a_record_that_is_not_one_is_a_503_not_a_crash(redis_url: str) -> None:
    client = redis.asyncio.from_url(redis_url)
    prefix = f"test:{uuid.uuid4().hex}:"
    await client.set(prefix + "k", b"\xff not json")
    store = RedisFeedbackStore(client, prefix=prefix)
    with pytest.raises(FeedbackUnavailableError, match="could not be read"):
        await store.fetch("k")
    await client.aclose()
