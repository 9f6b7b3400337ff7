"""Idempotency-Key scoped per caller, against a real Redis and the fake model over HTTP:
callers never see each other's answers, the fingerprint covers the pinned version and the
tenant, the key sent upstream is derived, and a failed save is a warning and a metric."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from fastapi.testclient import TestClient

from fakemodel.app import FakeModelState, create_fake_model_app
from service.app import create_app
from service.http.auth import hash_key
from tests.support.redis import run_redis_server
from tests.support.servers import serve_in_thread

from .conftest import ROOT, build_settings

pytestmark = pytest.mark.integration

QUESTION = {"prompt": "faq", "question": "How long do refunds take?"}
SHOP_KEY, BANK_KEY = "pr_shop-key-1", "pr_bank-key-2"


def _manifest(folder: Path) -> Path:
    """A version without retrieval, so every answer is one call to the fake model."""
    base = yaml.safe_load((ROOT / "prompts" / "policy-qa-1.1.0.yaml").read_text())
    spec = base["spec"]
    spec.update(prompt="faq", version="1.0.0", variables=[])
    spec.pop("retrieval")
    spec["guardrails"] = {"requireCitations": False}
    spec["template"] = {
        "system": "Answer from the context.",
        "user": "CONTEXT:\n[1] (faq.md) Refunds take five days.\n\nQUESTION: {{ question }}",
    }
    spec["model"] = {"name": "gpt-4o-mini", "timeoutSeconds": 5.0, "fallbacks": []}
    base["metadata"]["name"] = "faq-1-0-0"
    folder.mkdir(exist_ok=True)
    (folder / "faq.yaml").write_text(yaml.safe_dump(base))
    return folder


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with serve_in_thread(create_fake_model_app(FakeModelState())) as url:
        yield url


@pytest.fixture(autouse=True)
def healed(fake: str) -> None:
    httpx.delete(f"{fake}/admin/faults").raise_for_status()
    httpx.delete(f"{fake}/admin/requests").raise_for_status()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with run_redis_server() as url:
        yield url


def _settings(tmp_path: Path, fake: str, redis_url: str, **overrides: Any) -> Any:
    return build_settings(
        prompts_dir=_manifest(tmp_path / "prompts"),
        corpus_dir="",
        model_base_url=f"{fake}/v1",
        redis_url=redis_url,
        **overrides,
    )


def _upstream_keys(fake: str) -> list[str | None]:
    records = httpx.get(f"{fake}/admin/requests").json()
    return [
        r["headers"].get("idempotency-key") for r in records if r["path"] == "/v1/chat/completions"
    ]


def _post_from(client: TestClient, address: str, headers: dict[str, str]) -> httpx.Response:
    """POST QUESTION as a client at ``address`` (the app's own event loop, another peer)."""

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=client.app, client=(address, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
            return await http.post("/v1/answers", json=QUESTION, headers=headers)

    return client.portal.call(post)  # type: ignore[union-attr]


def test_anonymous_callers_with_the_same_key_do_not_see_each_other(
    tmp_path: Path, fake: str, redis_url: str
) -> None:
    key = {"Idempotency-Key": f"order-{time.monotonic_ns()}"}
    with TestClient(create_app(_settings(tmp_path, fake, redis_url))) as client:
        alice = _post_from(client, "10.0.0.1", {**key, "Authorization": "Bearer alice"})
        bob = _post_from(client, "10.0.0.1", {**key, "Authorization": "Bearer bob"})
        first_host = _post_from(client, "10.0.0.1", key)
        second_host = _post_from(client, "10.0.0.2", key)
        alice_again = _post_from(client, "10.0.0.9", {**key, "Authorization": "Bearer alice"})
        first_host_again = _post_from(client, "10.0.0.1", key)
    for response in (alice, bob, first_host, second_host):
        assert response.status_code == 200, response.text
        assert "idempotent-replayed" not in response.headers
    assert len({r.json()["request_id"] for r in (alice, bob, first_host, second_host)}) == 4
    for again, first in ((alice_again, alice), (first_host_again, first_host)):
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
    assert len(_upstream_keys(fake)) == 4  # four scopes, four calls; the replays made none


def test_a_pinned_request_is_never_replayed_to_an_unpinned_one(
    tmp_path: Path, fake: str, redis_url: str
) -> None:
    key = {"Idempotency-Key": f"pin-{time.monotonic_ns()}"}
    with TestClient(create_app(_settings(tmp_path, fake, redis_url))) as client:
        pinned = client.post(
            "/v1/answers", json=QUESTION, headers={**key, "X-Prompt-Version": "1.0.0"}
        )
        unpinned = client.post("/v1/answers", json=QUESTION, headers=key)
        pinned_again = client.post(
            "/v1/answers", json=QUESTION, headers={**key, "X-Prompt-Version": "1.0.0"}
        )
    assert pinned.status_code == 200
    assert unpinned.status_code == 422
    assert unpinned.json()["type"].endswith("idempotency-key-reused")
    assert pinned_again.headers["idempotent-replayed"] == "true"


def test_tenants_with_the_same_key_send_different_derived_keys_upstream(
    tmp_path: Path, fake: str, redis_url: str
) -> None:
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(
        f"- {{id: shop-web, sha256: {hash_key(SHOP_KEY)}, tenant: shop, prompts: ['*']}}\n"
        f"- {{id: bank-web, sha256: {hash_key(BANK_KEY)}, tenant: bank, prompts: ['*']}}\n"
    )
    chosen = "same-key-everyone-picks"
    settings = _settings(
        tmp_path,
        fake,
        redis_url,
        auth_mode="api-key",
        api_keys_file=keys_file,
        idempotency_secret="install-secret-for-tests",
    )
    with TestClient(create_app(settings)) as client:
        responses = [
            client.post(
                "/v1/answers",
                json=QUESTION,
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": chosen},
            )
            for key in (SHOP_KEY, BANK_KEY)
        ]
        unkeyed = client.post(
            "/v1/answers",
            json=QUESTION,
            headers={"Authorization": f"Bearer {SHOP_KEY}", "X-Request-ID": "caller-chosen-id"},
        )
    assert [r.status_code for r in (*responses, unkeyed)] == [200, 200, 200]
    assert all("idempotent-replayed" not in r.headers for r in responses)
    shop, bank, fresh = _upstream_keys(fake)
    assert shop and bank and fresh
    assert len({shop, bank, fresh}) == 3
    assert chosen not in (shop, bank) and fresh != "caller-chosen-id"
    assert unkeyed.headers["x-request-id"] == "caller-chosen-id"
    # The derivation is stable: a second replica with the same secret sends the same key.
    with TestClient(create_app(settings)) as replica:
        httpx.delete(f"{fake}/admin/requests").raise_for_status()
        client_headers = {"Authorization": f"Bearer {SHOP_KEY}", "Idempotency-Key": "another"}
        replica.post("/v1/answers", json=QUESTION, headers=client_headers)
    with TestClient(create_app(settings)) as other_replica:
        other_replica.post(
            "/v1/answers",
            json={**QUESTION, "question": "Again?"},
            headers={"Authorization": f"Bearer {BANK_KEY}", "Idempotency-Key": "another"},
        )
    first, second = _upstream_keys(fake)
    assert first != second  # other tenant, other scope, other upstream key


def test_an_answer_that_cannot_be_saved_is_a_warning_and_a_metric(
    tmp_path: Path, fake: str, capfd: pytest.CaptureFixture[str]
) -> None:
    httpx.post(f"{fake}/admin/faults", json={"latency_ms": 1500, "times": 1}).raise_for_status()
    with (
        run_redis_server() as url,
        TestClient(create_app(_settings(tmp_path, fake, url))) as client,
    ):
        assert client.get("/readyz").status_code == 200

        async def redis_dies_mid_request() -> Any:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
                pending = asyncio.create_task(
                    http.post("/v1/answers", json=QUESTION, headers={"Idempotency-Key": "lost"})
                )
                # Until the model has the request, so the lease is taken.
                await asyncio.to_thread(_wait_for_upstream_call, fake)
                await asyncio.to_thread(_shutdown, url)
                return await pending

        capfd.readouterr()
        response = client.portal.call(redis_dies_mid_request)  # type: ignore[union-attr]
        out = capfd.readouterr().out
        ready = client.get("/readyz")
        metrics = client.get("/metrics").text
    assert response.status_code == 200  # the caller still gets the answer
    warnings = [
        json.loads(line)
        for line in out.splitlines()
        if line.startswith("{") and "not stored for its Idempotency-Key" in line
    ]
    assert len(warnings) == 1 and warnings[0]["level"] == "warning"
    assert "promptrollouts_idempotency_save_failures_total 1.0" in metrics
    assert ready.status_code == 503 and ready.json()["detail"].startswith("redis")


def _wait_for_upstream_call(fake: str) -> None:
    deadline = time.monotonic() + 10
    while not _upstream_keys(fake):
        assert time.monotonic() < deadline, "the request never reached the model"
        time.sleep(0.02)


def _shutdown(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.shutdown(nosave=True)
    except redis.exceptions.ConnectionError:
        pass  # the server closes the connection as it exits
    finally:
        client.close()
