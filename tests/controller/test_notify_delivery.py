"""Delivering notifications to a real HTTP receiver on 127.0.0.1 that checks each signature."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.metrics import ControllerMetrics
from controller.notify_delivery import Notifier
from controller.signing import verify_signature
from rehearsal.net import free_port
from rehearsal.notify_receiver import NotificationReceiver

pytestmark = pytest.mark.integration
SECRET = "s3cret-for-tests"
ROOT = Path(__file__).resolve().parents[2]


def event(n: int) -> dict[str, object]:
    return {"id": f"e{n}", "prompt": "p", "version": "1.1.0", "phase": "RolledBack", "n": n}


def count(metrics: ControllerMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def notifier(urls: tuple[str, ...], metrics: ControllerMetrics, **options: object) -> Notifier:
    defaults: dict[str, object] = {"backoff_seconds": 0.05, "timeout_seconds": 2.0}
    return Notifier(urls, SECRET, metrics, **(defaults | options))  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_each_event_reaches_every_url_signed() -> None:
    metrics = ControllerMetrics()
    with NotificationReceiver(SECRET) as one, NotificationReceiver(SECRET) as two:
        sender = notifier((one.url, two.url), metrics)
        sender.start()
        try:
            assert sender.submit(event(1), ("uid", "7", "RolledBack"))
            await until(lambda: len(one.received) == 1 and len(two.received) == 1)
        finally:
            await sender.stop()
    for receiver in (one, two):
        (got,) = receiver.received
        assert got.verified and got.event == event(1)
    endpoint = one.url.rsplit("/", 1)[0]
    assert (
        count(metrics, "promptrollouts_notifications_total", endpoint=endpoint, result="delivered")
        == 1
    )


@pytest.mark.asyncio
async def test_a_wrong_secret_does_not_verify() -> None:
    metrics = ControllerMetrics()
    with NotificationReceiver("another-secret") as receiver:
        sender = notifier((receiver.url,), metrics)
        sender.start()
        try:
            sender.submit(event(1), ("k",))
            await until(lambda: len(receiver.received) == 1)
        finally:
            await sender.stop()
    (got,) = receiver.received
    assert not got.verified
    assert verify_signature(got.body, None, SECRET) is False


@pytest.mark.asyncio
async def test_delivered_once_per_transition_despite_a_receiver_that_fails_twice() -> None:
    metrics = ControllerMetrics()
    with NotificationReceiver(SECRET, statuses=[503, 503, 200]) as receiver:
        sender = notifier((receiver.url,), metrics)
        sender.start()
        try:
            key = ("uid-1", "41", "RolledBack")
            assert sender.submit(event(1), key)
            # A later reconcile that still sees the old object decides the same transition.
            assert not sender.submit(event(1), key)
            await until(lambda: [r.status for r in receiver.received] == [503, 503, 200])
            await asyncio.sleep(0.3)  # nothing more comes
        finally:
            await sender.stop()
    statuses = [r.status for r in receiver.received]
    assert statuses == [503, 503, 200]
    assert all(r.verified and r.event == event(1) for r in receiver.received)
    endpoint = receiver.url.rsplit("/", 1)[0]
    assert (
        count(metrics, "promptrollouts_notification_attempt_failures_total", endpoint=endpoint) == 2
    )
    assert (
        count(metrics, "promptrollouts_notifications_total", endpoint=endpoint, result="delivered")
        == 1
    )


@pytest.mark.asyncio
async def test_a_refusal_is_not_retried_and_counts_as_failed() -> None:
    metrics = ControllerMetrics()
    with NotificationReceiver(SECRET, statuses=[400]) as receiver:
        sender = notifier((receiver.url,), metrics)
        sender.start()
        try:
            sender.submit(event(1), ("k",))
            endpoint = receiver.url.rsplit("/", 1)[0]
            await until(
                lambda: (
                    count(
                        metrics,
                        "promptrollouts_notifications_total",
                        endpoint=endpoint,
                        result="failed",
                    )
                    == 1
                )
            )
        finally:
            await sender.stop()
    assert len(receiver.received) == 1


@pytest.mark.asyncio
async def test_a_dead_receiver_gives_up_after_max_attempts() -> None:
    metrics = ControllerMetrics()
    url = f"http://127.0.0.1:{free_port()}/hook"
    sender = notifier((url,), metrics, max_attempts=3)
    sender.start()
    try:
        sender.submit(event(1), ("k",))
        endpoint = url.rsplit("/", 1)[0]
        await until(
            lambda: (
                count(
                    metrics,
                    "promptrollouts_notifications_total",
                    endpoint=endpoint,
                    result="failed",
                )
                == 1
            )
        )
    finally:
        await sender.stop()
    assert (
        count(metrics, "promptrollouts_notification_attempt_failures_total", endpoint=endpoint) == 3
    )


@pytest.mark.asyncio
async def test_a_hung_receiver_blocks_neither_reconciliation_nor_other_urls() -> None:
    metrics = ControllerMetrics()
    with (
        NotificationReceiver(SECRET, delay_seconds=30) as hung,
        NotificationReceiver(SECRET) as healthy,
    ):
        sender = notifier((hung.url, healthy.url), metrics, timeout_seconds=0.3, max_attempts=2)
        sender.start()
        try:
            # The reconcile loop's side: submitting never waits, whatever the receivers do.
            started = time.perf_counter()
            for n in range(50):
                sender.submit(event(n), ("k", str(n)))
            assert time.perf_counter() - started < 0.5
            ticks = 0
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:  # a 10 ms "tick" keeps its pace meanwhile
                await asyncio.sleep(0.01)
                ticks += 1
            assert ticks > 20
            await until(lambda: len(healthy.received) == 50)
            endpoint = hung.url.rsplit("/", 1)[0]
            await until(
                lambda: (
                    count(
                        metrics,
                        "promptrollouts_notification_attempt_failures_total",
                        endpoint=endpoint,
                    )
                    >= 2
                )
            )
        finally:
            stopping = time.perf_counter()
            await sender.stop(grace_seconds=0.2)
            assert time.perf_counter() - stopping < 2.0
    assert [r.event["n"] for r in healthy.received] == list(range(50))  # in order


@pytest.mark.asyncio
async def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    metrics = ControllerMetrics()
    with NotificationReceiver(SECRET) as receiver:
        sender = notifier((receiver.url,), metrics, queue_size=2)
        for n in range(3):  # the worker is not running yet: the queue fills
            sender.submit(event(n), ("k", str(n)))
        endpoint = receiver.url.rsplit("/", 1)[0]
        assert (
            count(
                metrics, "promptrollouts_notifications_total", endpoint=endpoint, result="dropped"
            )
            == 1
        )
        sender.start()
        try:
            await until(lambda: len(receiver.received) == 2)
        finally:
            await sender.stop()
    assert [r.event["n"] for r in receiver.received] == [1, 2]


@pytest.mark.asyncio
async def test_slack_without_a_secret_is_sent_unsigned() -> None:
    metrics = ControllerMetrics()
    with NotificationReceiver(SECRET) as receiver:
        sender = Notifier((receiver.url,), "", metrics, format="slack")
        sender.start()
        try:
            sender.submit(
                {"id": "1", "prompt": "p", "version": "2.0.0", "name": "p-2", "phase": "Promoted"},
                ("k",),
            )
            await until(lambda: len(receiver.received) == 1)
        finally:
            await sender.stop()
    (got,) = receiver.received
    assert not got.verified
    assert got.event["text"].startswith("*p* 2.0.0: none → *Promoted*")


def test_bad_settings_stop_the_controller_at_start_without_leaking_them() -> None:
    env = {
        **os.environ,
        "NOTIFY_WEBHOOK_URLS": "https://ok.example/a,hooks.example/secret-token",
        "NOTIFY_SECRET": "top-secret-key",
        "CONTROLLER_METRICS_PORT": "0",
        "KUBECONFIG": "/nonexistent",
    }
    kopf = Path(sys.executable).parent / "kopf"
    done = subprocess.run(
        [str(kopf), "run", "-A", "--standalone", "-m", "controller.operator"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "NOTIFY_WEBHOOK_URLS entry 2 is not an http(s) URL" in output
    assert "secret-token" not in output and "top-secret-key" not in output
