"""The Idempotency component (begin / complete / release) over real stores, and the Redis
store's failures raised as the service's own 503 error."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
import redis
import redis.asyncio

from service.errors import (
    IdempotencyKeyInFlightError,
    IdempotencyKeyInvalidError,
    IdempotencyKeyReusedError,
    IdempotencyUnavailableError,
)
from service.http.idempotency import Idempotency, IdempotencyStore, Lease
from service.http.idempotency_keys import (
    Replay,
    StoredResponse,
    build_fingerprint,
    build_scope_key,
    build_upstream_key,
)
from service.http.idempotency_memory import MemoryIdempotencyStore
from service.http.idempotency_redis import RedisIdempotencyStore
from service.telemetry.metrics import Metrics
from tests.support.net import free_port
from tests.support.redis import run_redis_server

SECRET = b"install-secret"
BODY = b'{"prompt": "policy-qa", "question": "How long do refunds take?"}'
RESPONSE = StoredResponse(200, (("content-type", "application/json"),), b'{"answer":"5 days"}')
ROUTER = Path(__file__).resolve().parents[3] / "service" / "http" / "routers" / "answers.py"


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def _component(store: IdempotencyStore, metrics: Metrics) -> Idempotency:
    return Idempotency(store, SECRET, lease_seconds=120, ttl_seconds=600, metrics=metrics)


def _count(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


async def _lease(idempotency: Idempotency, header: str = "key-1", scope: str = "key:a") -> Lease:
    begun = await idempotency.begin(header, scope=scope, body=BODY)
    assert isinstance(begun, Lease)
    return begun


@pytest.fixture
def dead_redis_url() -> str:
    """A redis:// URL on a free local port where nothing listens."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.mark.asyncio
async def test_a_lease_carries_the_scope_fingerprint_and_hmac_upstream_key() -> None:
    idempotency = _component(MemoryIdempotencyStore(), Metrics())
    lease = await idempotency.begin(
        '"key-1"', scope="key:a", body=BODY, pinned_version="1.1.0", tenant="shop"
    )
    assert isinstance(lease, Lease)
    scope_key = build_scope_key("key:a", "key-1")  # the quoted header is the same key
    assert lease.scope_key == scope_key
    assert lease.fingerprint == build_fingerprint(BODY, pinned_version="1.1.0", tenant="shop")
    assert lease.upstream_key == build_upstream_key(SECRET, scope_key)
    assert "key-1" not in lease.upstream_key


@pytest.mark.asyncio
async def test_completion_replays_and_counts_the_replay() -> None:
    metrics = Metrics()
    idempotency = _component(MemoryIdempotencyStore(), metrics)
    lease = await _lease(idempotency)
    with pytest.raises(IdempotencyKeyInFlightError):
        await idempotency.begin("key-1", scope="key:a", body=BODY)
    assert await idempotency.complete(lease, RESPONSE) is True
    assert await idempotency.begin("key-1", scope="key:a", body=BODY) == Replay(RESPONSE)
    assert _count(metrics, "promptrollouts_idempotent_replays_total") == 1
    assert _count(metrics, "promptrollouts_idempotency_save_failures_total") == 0
    with pytest.raises(IdempotencyKeyReusedError):
        await idempotency.begin("key-1", scope="key:a", body=BODY, tenant="other")
    other_caller = await idempotency.begin("key-1", scope="key:b", body=BODY)
    assert isinstance(other_caller, Lease)  # scopes are per caller


@pytest.mark.asyncio
async def test_release_frees_the_key_for_a_retry() -> None:
    idempotency = _component(MemoryIdempotencyStore(), Metrics())
    lease = await _lease(idempotency)
    await idempotency.release(lease)
    assert isinstance(await _lease(idempotency), Lease)


@pytest.mark.asyncio
@pytest.mark.parametrize("header", ["", "a b", "x" * 256], ids=["empty", "space", "too-long"])
async def test_an_invalid_key_is_refused_before_the_store_is_touched(header: str) -> None:
    store = MemoryIdempotencyStore()
    with pytest.raises(IdempotencyKeyInvalidError):
        await _component(store, Metrics()).begin(header, scope=None, body=BODY)
    assert len(store) == 0


@pytest.mark.asyncio
async def test_a_save_after_the_lease_expired_is_a_warning_and_a_metric(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, metrics = FakeClock(), Metrics()
    idempotency = _component(MemoryIdempotencyStore(clock=clock), metrics)
    lease = await _lease(idempotency)
    clock.now += 121  # past the lease
    with caplog.at_level(logging.WARNING, logger="service.http.idempotency"):
        assert await idempotency.complete(lease, RESPONSE) is False
    assert _count(metrics, "promptrollouts_idempotency_save_failures_total") == 1
    assert ["its lease expired first" in r.getMessage() for r in caplog.records] == [True]
    assert isinstance(await _lease(idempotency), Lease)  # nothing was stored


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        Idempotency(
            MemoryIdempotencyStore(), b"", lease_seconds=1, ttl_seconds=1, metrics=Metrics()
        )


@pytest.mark.asyncio
@pytest.mark.integration
async def test_redis_store_raises_unavailable_for_every_operation(dead_redis_url: str) -> None:
    store = RedisIdempotencyStore(redis.asyncio.from_url(dead_redis_url))
    try:
        with pytest.raises(IdempotencyUnavailableError, match="ConnectionError") as caught:
            await store.begin("s:k", "fp", 10)
        assert "127.0.0.1" not in str(caught.value)  # the store is named, not its address
        with pytest.raises(IdempotencyUnavailableError):
            await store.complete("s:k", "token", "fp", RESPONSE, 10)
        with pytest.raises(IdempotencyUnavailableError):
            await store.release("s:k", "token")
    finally:
        await store.close()


@pytest.mark.asyncio
@pytest.mark.integration
async def test_a_store_that_dies_mid_request_is_a_counted_unsaved_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    with run_redis_server() as url:
        idempotency = _component(RedisIdempotencyStore(redis.asyncio.from_url(url)), metrics)
        lease = await _lease(idempotency)
        admin = redis.Redis.from_url(url)
        try:
            admin.shutdown(nosave=True)
        except redis.exceptions.ConnectionError:
            pass  # the server closes the connection as it exits
        finally:
            admin.close()
        with caplog.at_level(logging.WARNING, logger="service.http.idempotency"):
            assert await idempotency.complete(lease, RESPONSE) is False  # no exception
        await idempotency.release(lease)  # quiet too
        with pytest.raises(IdempotencyUnavailableError):  # 503: a keyed request never runs
            await idempotency.begin("key-2", scope="key:a", body=BODY)
        await idempotency.close()
    assert _count(metrics, "promptrollouts_idempotency_save_failures_total") == 1
    assert ["the store failed" in r.getMessage() for r in caplog.records] == [True]


def test_the_router_knows_nothing_about_redis() -> None:
    tree = ast.parse(ROUTER.read_text(encoding="utf-8"))
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported, "the router's imports were not read"
    assert not [name for name in imported if "redis" in name.lower()]
    assert "RedisError" not in ROUTER.read_text(encoding="utf-8")
