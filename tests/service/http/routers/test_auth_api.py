"""Authentication, tenants and quotas over the API: 401/403/429, hot reload, logs, spans,
metrics, the METRICS_PORT listener, OPENAPI=false, and the start-up exposure warning."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.app import create_app
from service.http.auth import hash_key
from tests.support.net import free_port
from tests.support.redis import run_redis_server

from .conftest import build_settings

pytestmark = pytest.mark.integration

WEB_KEY, BANK_KEY, NEW_KEY = "pr_web-key-0001", "pr_bank-key-0002", "pr_new-key-0003"
ASK = {"prompt": "policy-qa", "question": "How long does shipping take?"}


def _entry(key_id: str, key: str, tenant: str, prompts: list[str]) -> str:
    return (
        f"- {{id: {key_id}, sha256: {hash_key(key)}, tenant: {tenant}, "
        f"prompts: {json.dumps(prompts)}}}\n"
    )


KEYS = _entry("web", WEB_KEY, "shop", ["policy-qa"]) + _entry("ops", BANK_KEY, "bank", ["*"])


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _write(path: Path, text: str) -> None:
    """Write and move the mtime on, so the watcher sees the change whatever the clock."""
    before = path.stat().st_mtime_ns if path.exists() else time.time_ns()
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "api-keys.yaml"
    path.write_text(KEYS)
    return path


@pytest.fixture(scope="module")
def secured(keys_file: Path) -> Iterator[TestClient]:
    settings = build_settings(
        auth_mode="api-key",
        api_keys_file=keys_file,
        api_keys_reload_seconds=0.05,
        openapi=False,
    )
    with TestClient(create_app(settings, bind_host="0.0.0.0")) as client:
        yield client


def _is_problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(":" + slug)


def test_missing_or_unknown_key_is_401_with_a_bearer_challenge(secured: TestClient) -> None:
    cases = {
        "none": {},
        "basic": {"Authorization": f"Basic {WEB_KEY}"},
        "unknown": _bearer("pr_guess"),
        "the-hash": _bearer(hash_key(WEB_KEY)),
    }
    for name, headers in cases.items():
        for method, path in (("POST", "/v1/answers"), ("GET", "/v1/prompts"), ("GET", "/v1/x")):
            response = secured.request(method, path, json=ASK, headers=headers)
            _is_problem(response, 401, "unauthenticated")
            assert response.headers["www-authenticate"].startswith("Bearer "), name
            assert response.headers["x-request-id"]
            assert "pr_guess" not in response.text and hash_key(WEB_KEY) not in response.text
    unknown = secured.post("/v1/answers", json=ASK, headers=_bearer("pr_guess"))
    assert 'error="invalid_token"' in unknown.headers["www-authenticate"]


def test_key_not_allowed_for_the_prompt_is_403_whether_or_not_it_exists(
    secured: TestClient,
) -> None:
    for prompt in ("other-prompt", "no-such-prompt"):
        response = secured.post(
            "/v1/answers", json={**ASK, "prompt": prompt}, headers=_bearer(WEB_KEY)
        )
        _is_problem(response, 403, "forbidden")
        assert "web" in response.json()["detail"] and WEB_KEY not in response.text
    missing = secured.post(
        "/v1/answers", json={**ASK, "prompt": "no-such-prompt"}, headers=_bearer(BANK_KEY)
    )
    _is_problem(missing, 404, "prompt-not-found")  # a "*" key may learn it does not exist


def test_a_valid_key_answers_and_lists_only_its_prompts(secured: TestClient) -> None:
    answered = secured.post("/v1/answers", json=ASK, headers=_bearer(WEB_KEY))
    assert answered.status_code == 200 and answered.json()["outcome"] == "answered"
    listed = secured.get("/v1/prompts", headers=_bearer(WEB_KEY)).json()["items"]
    everything = secured.get("/v1/prompts", headers=_bearer(BANK_KEY)).json()["items"]
    assert listed and {item["prompt"] for item in listed} == {"policy-qa"}
    assert len(everything) >= len(listed)


def test_operational_paths_stay_open_and_docs_are_off(secured: TestClient) -> None:
    assert secured.get("/healthz").status_code == 200
    assert secured.get("/readyz").status_code == 200
    metrics = secured.get("/metrics")
    assert metrics.status_code == 200
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert secured.get(path).status_code == 404, path
    assert 'promptrollouts_auth_failures_total{reason="invalid"}' in metrics.text
    assert "tenant=" not in metrics.text  # TENANT_METRICS is off


def test_keys_file_is_reloaded_and_a_broken_one_keeps_the_last_good_set(
    secured: TestClient, keys_file: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    def status(key: str) -> int:
        return secured.get("/v1/prompts", headers=_bearer(key)).status_code

    def wait_for(key: str, expected: int) -> None:
        deadline = time.monotonic() + 10
        while status(key) != expected:
            assert time.monotonic() < deadline, f"key file change not seen ({expected})"
            time.sleep(0.05)

    assert status(NEW_KEY) == 401
    _write(keys_file, KEYS + _entry("new", NEW_KEY, "shop", ["*"]))
    wait_for(NEW_KEY, 200)
    capfd.readouterr()
    _write(keys_file, KEYS + "- {id: broken, sha256: " + NEW_KEY + "}\n")
    deadline = time.monotonic() + 10
    out = ""
    while "keeping the last good set" not in out:
        assert time.monotonic() < deadline, "broken file not reported"
        time.sleep(0.05)
        out += capfd.readouterr().out
    assert status(NEW_KEY) == 200  # still the last good set
    assert NEW_KEY not in out  # the log names the problem, never the content
    _write(keys_file, KEYS)  # revoked
    wait_for(NEW_KEY, 401)


def test_tenant_is_on_every_log_line_of_the_request(
    secured: TestClient, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    # An id of letters only: a random hex id may look like a number the redaction hides.
    headers = {**_bearer(WEB_KEY), "X-Request-ID": "tenant-log-check"}
    response = secured.post("/v1/answers", json=ASK, headers=headers)
    lines = [
        json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")
    ]
    mine = [line for line in lines if line.get("request_id") == response.headers["x-request-id"]]
    assert any(line["event"] == "request" for line in mine)
    assert mine and all(line.get("tenant") == "shop" for line in mine)


def test_tenant_is_on_spans(keys_file: Path) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    try:
        settings = build_settings(auth_mode="api-key", api_keys_file=keys_file)
        with TestClient(create_app(settings, tracer_provider=provider)) as client:
            memory.clear()
            assert client.post("/v1/answers", json=ASK, headers=_bearer(WEB_KEY)).status_code == 200
    finally:
        provider.shutdown()
    spans = {span.name: span for span in memory.get_finished_spans()}
    for name in ("POST /v1/answers", "answer policy-qa", "retrieval policies"):
        attributes = spans[name].attributes or {}
        assert attributes.get("prompt_rollouts.tenant") == "shop", name


def test_tenant_quota_is_shared_by_two_replicas_through_redis(keys_file: Path) -> None:
    def app(redis_url: str) -> TestClient:
        settings = build_settings(
            auth_mode="api-key",
            api_keys_file=keys_file,
            tenant_rpm=3,
            tenant_metrics=True,
            redis_url=redis_url,
            corpus_dir="",
        )
        return TestClient(create_app(settings))

    with run_redis_server() as redis_url, app(redis_url) as one, app(redis_url) as two:
        statuses = [
            client.get("/v1/prompts", headers=_bearer(WEB_KEY)).status_code
            for client in (one, two, one)
        ]
        refused = two.get("/v1/prompts", headers=_bearer(WEB_KEY))
        other_tenant = one.get("/v1/prompts", headers=_bearer(BANK_KEY))
        health = two.get("/healthz")
        metrics = two.get("/metrics").text
    assert statuses == [200, 200, 200]
    _is_problem(refused, 429, "tenant-quota-exceeded")
    assert 55 <= int(refused.headers["retry-after"]) <= 60
    assert other_tenant.status_code == 200 and health.status_code == 200
    assert 'promptrollouts_tenant_quota_rejections_total{tenant="shop"} 1.0' in metrics


def _start_up_lines(capfd: pytest.CaptureFixture[str], host: str, **overrides: Any) -> str:
    capfd.readouterr()
    settings = build_settings(corpus_dir="", **overrides)
    with TestClient(create_app(settings, bind_host=host)):
        pass
    return capfd.readouterr().out


def test_no_authentication_on_a_public_address_warns_loudly(
    capfd: pytest.CaptureFixture[str], keys_file: Path
) -> None:
    exposed = _start_up_lines(capfd, "0.0.0.0")
    local = _start_up_lines(capfd, "127.0.0.1")
    guarded = _start_up_lines(
        capfd,
        "0.0.0.0",
        auth_mode="api-key",
        api_keys_file=keys_file,
    )
    warning = [json.loads(line) for line in exposed.splitlines() if "AUTH_MODE=none" in line]
    assert len(warning) == 1 and warning[0]["level"] == "warning"
    assert "ANYONE WHO CAN REACH IT" in warning[0]["event"]
    assert warning[0]["address"] == "0.0.0.0"
    assert "AUTH_MODE=none" not in local and "AUTH_MODE=none" not in guarded


def test_metrics_port_moves_metrics_to_a_listener_of_its_own() -> None:
    port = free_port()
    settings = build_settings(corpus_dir="", metrics_port=port)
    with TestClient(create_app(settings, bind_host="127.0.0.1")) as client:
        on_api = client.get("/metrics")
        own = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        other = httpx.get(f"http://127.0.0.1:{port}/v1/prompts", timeout=5)
    assert on_api.status_code == 404
    assert own.status_code == 200 and "promptrollouts_requests_total" in own.text
    assert other.status_code == 404
    with pytest.raises(httpx.ConnectError):  # stopped with the app
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_taken_metrics_port_stops_start_up() -> None:
    port = free_port()
    settings = build_settings(corpus_dir="", metrics_port=port)
    with (
        TestClient(create_app(settings, bind_host="127.0.0.1")),
        pytest.raises(RuntimeError, match="METRICS_PORT"),
        TestClient(create_app(settings, bind_host="127.0.0.1")),
    ):
        pass


def test_a_request_on_a_public_address_warns_once_when_start_up_could_not_tell(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with TestClient(create_app(build_settings(corpus_dir=""), bind_host="127.0.0.1")) as client:

        async def ask_twice(base_url: str) -> None:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
                for _ in range(2):
                    await http.get("/v1/prompts")

        capfd.readouterr()
        client.portal.call(ask_twice, "http://127.0.0.1:8000")  # type: ignore[union-attr]
        local = capfd.readouterr().out
        client.portal.call(ask_twice, "http://10.1.2.3:8000")  # type: ignore[union-attr]
        public = capfd.readouterr().out
    assert "AUTH_MODE=none" not in local
    warnings = [json.loads(line) for line in public.splitlines() if "AUTH_MODE=none" in line]
    assert [w["address"] for w in warnings] == ["10.1.2.3"]
