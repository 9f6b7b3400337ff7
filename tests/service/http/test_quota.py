"""TENANT_RPM: the moving-window rule, in process and shared through a real Redis."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import pytest
import redis.asyncio

from service.http.quota import MemoryQuota, QuotaUnavailableError, RedisQuota, decide_window
from tests.support.redis import run_redis_server


@pytest.mark.parametrize(
    ("times", "now", "limit", "allowed", "retry_after"),
    [
        ([], 0.0, 1, True, 0.0),
        ([0.0], 1.0, 1, False, 59.0),
        ([0.0], 60.0, 1, True, 0.0),  # the oldest left the window exactly now
        ([0.0, 30.0], 45.0, 2, False, 15.0),
        ([0.0, 30.0], 61.0, 2, True, 0.0),
        ([10.0, 20.0, 30.0], 35.0, 5, True, 0.0),
    ],
    ids=["empty", "full", "edge", "full-two", "one-left", "room"],
)
def test_decide_window(
    times: list[float], now: float, limit: int, allowed: bool, retry_after: float
) -> None:
    window = deque(times)
    decision = decide_window(window, now, limit)
    assert decision.allowed is allowed
    assert decision.retry_after == pytest.approx(retry_after)
    assert (window[-1] == now) is allowed  # only admitted requests count


@pytest.mark.asyncio
async def test_memory_quota_is_per_tenant() -> None:
    now = [0.0]
    quota = MemoryQuota(clock=lambda: now[0])
    assert [(await quota.admit("a", 2)).allowed for _ in range(3)] == [True, True, False]
    assert (await quota.admit("b", 2)).allowed
    now[0] = 60.0
    assert (await quota.admit("a", 2)).allowed


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with run_redis_server() as url:
        yield url


@pytest.mark.asyncio
async def test_redis_quota_is_shared_by_replicas(redis_url: str) -> None:
    one, two = redis.asyncio.from_url(redis_url), redis.asyncio.from_url(redis_url)
    try:
        first, second = RedisQuota(one), RedisQuota(two)
        results = [(await q.admit("shop", 3)).allowed for q in (first, second, first, second)]
        assert results == [True, True, True, False]
        refused = await first.admit("shop", 3)
        assert not refused.allowed and 58 < refused.retry_after <= 60
        assert (await second.admit("bank", 3)).allowed  # another tenant, another window
    finally:
        await one.aclose()
        await two.aclose()


@pytest.mark.asyncio
async def test_redis_quota_reports_a_store_failure() -> None:
    client = redis.asyncio.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        with pytest.raises(QuotaUnavailableError):
            await RedisQuota(client).admit("shop", 3)
    finally:
        await client.aclose()
