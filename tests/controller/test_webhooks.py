"""Webhook calls over real HTTP: a receiver on 127.0.0.1 verifies each HMAC signature.

What a receiver sees (signed compact JSON), and what the controller makes of every answer:
2xx yes, 4xx no at once, 5xx/429/network errors retried with backoff until the webhook's
timeout, a hung receiver cut off at that timeout, redirects never followed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from api.v1alpha1 import Webhook, WebhookType
from controller.gate_calls import GateCall
from controller.signing import sign_body
from controller.webhooks import build_body, call_webhook, call_webhooks
from tests.support.net import free_port
from tests.support.webhook_receiver import WebhookReceiver, run_webhook_receiver

pytestmark = pytest.mark.integration

SECRET = "s3cret-for-tests"
PAYLOAD = {
    "prompt": "faq",
    "version": "1.1.0",
    "phase": "Progressing",
    "step": 1,
    "type": "confirm-promotion",
    "metadata": {"team": "qa"},
}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with run_webhook_receiver(SECRET) as running:
        yield running


def _call(url: str, timeout: int = 2, name: str = "gate") -> GateCall:
    hook = Webhook(name=name, type=WebhookType.CONFIRM_PROMOTION, url=url, timeout_seconds=timeout)
    return GateCall("faq-1-1-0", hook, dict(PAYLOAD))


async def _outcome(call: GateCall, secret: str | None = SECRET) -> tuple[bool, str, float]:
    async with httpx.AsyncClient() as http:
        started = time.monotonic()
        outcome = await call_webhook(http, call, secret)
        return outcome.ok, outcome.message, time.monotonic() - started


def test_the_signature_is_the_hmac_of_the_exact_body() -> None:
    body = build_body(PAYLOAD)
    assert body.startswith(b'{"metadata":{"team":"qa"},"phase":"Progressing"')
    assert sign_body(body, "key") == sign_body(body, "key")
    assert sign_body(body, "key") != sign_body(body, "other")
    assert sign_body(body, "key") != sign_body(body + b" ", "key")
    assert sign_body(body, "key").startswith("sha256=")


@pytest.mark.asyncio
async def test_a_receiver_verifies_the_signed_payload(receiver: WebhookReceiver) -> None:
    ok, message, _ = await _outcome(_call(receiver.url + "/confirm"))
    assert (ok, message) == (True, "HTTP 200")
    [got] = receiver.received("/confirm")
    assert got.verified
    assert got.body == PAYLOAD


@pytest.mark.asyncio
async def test_a_wrong_or_missing_secret_does_not_verify(receiver: WebhookReceiver) -> None:
    await _outcome(_call(receiver.url + "/wrong"), secret="not-the-secret")
    await _outcome(_call(receiver.url + "/unsigned"), secret=None)
    assert [r.verified for r in receiver.received()] == [False, False]


@pytest.mark.parametrize("status", [400, 403, 404, 409])
@pytest.mark.asyncio
async def test_a_4xx_is_a_no_at_once(receiver: WebhookReceiver, status: int) -> None:
    receiver.answer("/no", status)
    ok, message, _ = await _outcome(_call(receiver.url + "/no"))
    assert (ok, message) == (False, f"HTTP {status}")
    assert len(receiver.received("/no")) == 1


@pytest.mark.asyncio
async def test_a_redirect_is_not_followed(receiver: WebhookReceiver) -> None:
    receiver.answer("/moved", 302)
    ok, message, _ = await _outcome(_call(receiver.url + "/moved"))
    assert (ok, message) == (False, "HTTP 302")


@pytest.mark.parametrize("status", [500, 503, 429])
@pytest.mark.asyncio
async def test_errors_are_retried_until_the_timeout(receiver: WebhookReceiver, status: int) -> None:
    receiver.answer("/flaky", status)
    ok, message, elapsed = await _outcome(_call(receiver.url + "/flaky", timeout=1))
    assert not ok
    assert message.startswith(f"HTTP {status} after ") and message.endswith("in 1s (timed out)")
    tries = len(receiver.received("/flaky"))
    assert 3 <= tries <= 6  # 0.2 s, 0.4 s, then the rest of the second
    assert 0.9 <= elapsed < 1.5


@pytest.mark.asyncio
async def test_a_retried_error_that_recovers_is_a_yes(receiver: WebhookReceiver) -> None:
    receiver.answer("/recovers", 503)

    async def recover() -> None:
        while not receiver.received("/recovers"):  # noqa: ASYNC110 - a thread fills it
            await asyncio.sleep(0.01)
        receiver.answer("/recovers", 204)

    task = asyncio.create_task(recover())
    ok, message, _ = await _outcome(_call(receiver.url + "/recovers", timeout=5))
    await task
    assert (ok, message) == (True, "HTTP 204")
    assert [r.status for r in receiver.received("/recovers")][-1] == 204


@pytest.mark.asyncio
async def test_a_hung_receiver_is_cut_off_at_the_timeout(receiver: WebhookReceiver) -> None:
    receiver.hang("/hung", 30)
    ok, message, elapsed = await _outcome(_call(receiver.url + "/hung", timeout=1))
    assert not ok
    assert message == "no answer after 1 try in 1s (timed out)"
    assert 0.9 <= elapsed < 1.5


@pytest.mark.asyncio
async def test_an_unreachable_webhook_is_retried_then_fails() -> None:
    url = f"http://127.0.0.1:{free_port()}/gone"
    ok, message, elapsed = await _outcome(_call(url, timeout=1))
    assert not ok
    assert message.startswith("ConnectError after ") and "tries" in message
    assert "127.0.0.1" not in message  # outcomes never carry the URL
    assert elapsed < 1.5


@pytest.mark.parametrize(
    ("url", "message"),
    [("http://[::1/x", "InvalidURL"), ("http://127.0.0.1:99999/x", "after ")],
    ids=["unparsable", "port-out-of-range"],
)
@pytest.mark.asyncio
async def test_a_url_the_client_cannot_use_is_a_no_not_a_crash(url: str, message: str) -> None:
    ok, said, elapsed = await _outcome(_call(url, timeout=1))
    assert not ok and message in said
    assert elapsed < 1.5


@pytest.mark.asyncio
async def test_calls_run_at_once_so_a_hung_one_delays_no_other(receiver: WebhookReceiver) -> None:
    receiver.hang("/hung", 30)
    calls = [_call(receiver.url + "/hung", timeout=2, name="hung")] + [
        _call(receiver.url + f"/fine{i}", name=f"fine{i}") for i in range(3)
    ]
    async with httpx.AsyncClient() as http:
        started = time.monotonic()
        results = await call_webhooks(http, calls, SECRET)
        elapsed = time.monotonic() - started
    assert [outcome.ok for _, outcome in results] == [False, True, True, True]
    assert elapsed < 2.5  # the slowest webhook's timeout, not the sum
