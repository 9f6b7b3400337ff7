"""The garbage collector once the service has started: the start-up heap frozen, generation
0's threshold raised (``GC_GEN0_THRESHOLD``), and the premise that makes it safe: answering
makes no reference cycles."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from bench.profiling import post_answer
from fakemodel.app import FakeModelState, create_fake_model_app
from service.app import create_app
from service.garbage_collection import DEFAULT_GEN0_THRESHOLD, decide_thresholds, settle_heap
from service.server import AppFactory
from service.settings import Settings
from tests.service.http.routers.conftest import build_settings
from tests.support.servers import serve_in_thread

ASK = {
    "prompt": "policy-qa",
    "question": "Can I refund a digital item after two weeks?",
    "variables": {"tone": "formal"},
}


@pytest.fixture
def collector() -> Iterator[None]:
    """Whatever a test does to this process's collector is undone after it."""
    thresholds = gc.get_threshold()
    was_enabled = gc.isenabled()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        if was_enabled:
            gc.enable()


@pytest.mark.parametrize(
    ("asked", "current", "expected"),
    [
        (50_000, (700, 10, 10), (50_000, 10, 10)),
        (700, (700, 10, 10), (700, 10, 10)),
        (10_000, (2_000, 20, 5), (10_000, 20, 5)),  # the older generations keep theirs
        (0, (700, 10, 10), None),  # 0: leave the collector alone
    ],
)
def test_decide_thresholds(
    asked: int, current: tuple[int, int, int], expected: tuple[int, int, int] | None
) -> None:
    assert decide_thresholds(asked, current) == expected


def test_the_setting_defaults_and_refuses_a_negative_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().gc_gen0_threshold == DEFAULT_GEN0_THRESHOLD == 50_000
    monkeypatch.setenv("GC_GEN0_THRESHOLD", "0")
    assert Settings().gc_gen0_threshold == 0
    monkeypatch.setenv("GC_GEN0_THRESHOLD", "-5")
    with pytest.raises(ValidationError, match="gc_gen0_threshold"):
        Settings()
    monkeypatch.setenv("GC_GEN0_THRESHOLD", "lots")
    with pytest.raises(ValidationError, match="gc_gen0_threshold"):
        Settings()


@pytest.mark.usefixtures("collector")
def test_settle_heap_freezes_the_heap_and_raises_generation_0() -> None:
    gc.unfreeze()
    older = gc.get_threshold()[1:]
    assert settle_heap(12_345) is True
    assert gc.get_threshold() == (12_345, *older)
    assert gc.get_freeze_count() > 1_000  # at least the interpreter's and the test's objects


@pytest.mark.usefixtures("collector")
def test_zero_leaves_the_collector_alone() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    assert settle_heap(0) is False
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("collector")
def test_the_served_app_settles_the_heap_once_started() -> None:
    """``python -m service`` builds its app through AppFactory: started, it has set the
    collector; the same app from ``create_app`` (tests, tools) leaves it alone."""
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    with TestClient(create_app(build_settings(gc_gen0_threshold=20_000))):
        assert gc.get_threshold()[0] == 700
        assert gc.get_freeze_count() == 0
    served = AppFactory(build_settings(gc_gen0_threshold=20_000), "127.0.0.1")()
    assert gc.get_threshold()[0] == 700  # nothing happens before start-up
    with TestClient(served) as client:
        assert gc.get_threshold() == (20_000, 10, 10)
        assert gc.get_freeze_count() > 1_000
        assert client.get("/readyz").status_code == 200


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.usefixtures("collector")
async def test_answering_makes_no_reference_cycles() -> None:
    """What makes a large generation-0 threshold safe: answers free everything they make
    by reference counting, so the collector has nothing to find after a hundred of them
    (through a real upstream, with retrieval, metrics, logs and the resilience layer on).
    The app is called as raw ASGI: Starlette's test client makes cycles of its own."""
    state = FakeModelState()
    body = json.dumps(ASK).encode()
    with serve_in_thread(create_fake_model_app(state)) as url:
        app = create_app(build_settings(model_base_url=f"{url}/v1"))
        async with app.router.lifespan_context(app):
            for _ in range(20):  # first-use caches, pools and lazy imports fill up here
                assert await post_answer(app, body) == 200
            gc.collect()
            gc.disable()
            statuses = [await post_answer(app, body) for _ in range(100)]
            unreachable = gc.collect()
            gc.enable()
    assert statuses == [200] * 100
    assert len(state.requests) >= 120, "the answers did not all reach the upstream"
    assert unreachable == 0, f"100 answers left {unreachable} objects in reference cycles"
