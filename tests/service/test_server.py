"""Connection hygiene over a real uvicorn server, under both the h11 and httptools parsers.

Each test talks raw HTTP/1.1 over a socket to ``service.server``'s configuration, the one
``python -m service`` runs, on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop

from service.server import HeaderMeter, build_server_config, render_raw_problem
from tests.service.http.routers.conftest import ROOT, build_settings
from tests.support.net import free_port
from tests.support.servers import serve_config_in_thread

pytestmark = pytest.mark.integration

PARSERS = ["h11", "httptools"]
PROBLEM = "application/problem+json"
#: Limits small enough for quick tests; each test states the one it exercises.
LIMITS: dict[str, Any] = {
    "header_timeout_seconds": 1.0,
    "body_timeout_seconds": 1.0,
    "max_header_bytes": 4096,
    "max_connections": 4,
}


@dataclass
class Reply:
    """What came back on a socket until the server closed it (or the read timed out)."""

    raw: bytes
    closed: bool
    elapsed: float

    @property
    def status(self) -> int | None:
        if not self.raw.startswith(b"HTTP/1.1 "):
            return None
        return int(self.raw.split(b" ", 2)[1])

    @property
    def headers(self) -> dict[str, str]:
        head = self.raw.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
        return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head)}

    @property
    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == PROBLEM, self.raw[:300]
        body = self.raw.partition(b"\r\n\r\n")[2]
        problem: dict[str, Any] = json.loads(body[: int(self.headers["content-length"])])
        return problem


def _read_until_closed(sock: socket.socket, started: float, timeout: float) -> Reply:
    sock.settimeout(timeout)
    chunks: list[bytes] = []
    closed = False
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        closed = True
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        pass
    return Reply(b"".join(chunks), closed, time.monotonic() - started)


@pytest.fixture(scope="module", params=PARSERS)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """The service behind the guarded protocol of one parser; yields (parser, port)."""
    settings = build_settings(corpus_dir=None, http_parser=request.param, **LIMITS)
    config = build_server_config(
        settings, "127.0.0.1", 0, log_level="warning", timeout_graceful_shutdown=1
    )
    with serve_config_in_thread(config) as url:
        yield request.param, int(url.rsplit(":", 1)[1])


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_keep_alive_connection_serves_requests_one_after_another(
    server: tuple[str, int],
) -> None:
    _, port = server
    with _connect(port) as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            data = b""
            while b'"ok"' not in data:
                data += sock.recv(4096)
            assert data.startswith(b"HTTP/1.1 200 ")
            time.sleep(0.4)  # 3 x 0.4 s > the 1 s header timeout: idle time is not head time


def test_slow_loris_headers_are_cut_off_after_the_header_timeout(
    server: tuple[str, int],
) -> None:
    _, port = server
    request = b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"X-Drip: a\r\n" * 200
    with _connect(port) as sock:
        started = time.monotonic()
        sent = 0
        try:
            for byte in request:  # one byte every 20 ms: 2,200 bytes would take 44 s
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.02)
                if time.monotonic() - started > 10:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = _read_until_closed(sock, started, 5)
    assert reply.closed, "the server kept a dripping client"
    assert reply.elapsed < 3.0, reply.elapsed
    assert sent < len(request)
    assert reply.status == 408
    assert reply.problem["type"].endswith(":header-timeout")
    assert reply.headers["connection"] == "close"


def test_silent_connection_is_closed_after_the_header_timeout(server: tuple[str, int]) -> None:
    _, port = server
    with _connect(port) as sock:
        reply = _read_until_closed(sock, time.monotonic(), 5)
    assert reply.closed and reply.raw == b""
    assert 0.9 < reply.elapsed < 3.0


def test_stalled_body_is_cut_off_with_a_408_problem(server: tuple[str, int]) -> None:
    _, port = server
    head = (
        b"POST /v1/answers HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n"
        b"content-length: 200\r\n\r\n"
    )
    with _connect(port) as sock:
        started = time.monotonic()
        sock.sendall(head + b'{"prompt": "policy-qa", ')
        reply = _read_until_closed(sock, started, 5)
    assert reply.closed
    assert reply.elapsed < 3.0
    assert reply.status == 408
    problem = reply.problem
    assert problem["type"].endswith(":body-timeout") and problem["status"] == 408
    assert problem["instance"] == "/v1/answers"


@pytest.mark.parametrize("size", [8 * 1024, 2 * 1024 * 1024], ids=["8KiB", "2MiB"])
def test_oversized_header_block_gets_431_and_the_connection_closes(
    server: tuple[str, int], size: int
) -> None:
    _, port = server
    request = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    with _connect(port) as sock:
        started = time.monotonic()
        # The server may stop reading mid-way: it answered and closed.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        reply = _read_until_closed(sock, started, 5)
    assert reply.closed
    # A reset can beat the answer to the client when megabytes are still in flight.
    if reply.raw or size < 64 * 1024:
        assert reply.status == 431
        assert reply.problem["type"].endswith(":headers-too-large")


def test_header_block_just_under_the_limit_is_served(server: tuple[str, int]) -> None:
    _, port = server
    head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: "
    request = head + b"a" * (4096 - len(head) - 4) + b"\r\n\r\n"
    assert len(request) == 4096
    with _connect(port) as sock:
        sock.sendall(request)
        data = sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(
    "header",
    [b"X-Test: a\x01b", b"X-Test: a\x1bb", b"X-Test: a\x7fb", b"X-Te\x01st: ab"],
    ids=["soh", "esc", "del", "in-name"],
)
def test_control_characters_in_headers_get_a_400_problem(
    server: tuple[str, int], header: bytes
) -> None:
    _, port = server
    with _connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + header + b"\r\n\r\n")
        reply = _read_until_closed(sock, time.monotonic(), 5)
    assert reply.status == 400, reply.raw[:200]
    assert reply.problem["status"] == 400
    assert reply.closed


def test_connection_limit_refuses_the_next_connection(server: tuple[str, int]) -> None:
    _, port = server
    held = [_connect(port) for _ in range(4)]
    try:
        # Each held connection is served once, then idles in keep-alive (5 s), well past
        # the 1 s head timeout that would otherwise close a silent connection.
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        with _connect(port) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            reply = _read_until_closed(extra, time.monotonic(), 5)
        assert reply.closed and reply.elapsed < 1.0
        if reply.raw:  # the 503 unless a reset overtook it
            assert reply.status == 503
            assert reply.problem["type"].endswith(":too-many-connections")
            assert reply.headers["retry-after"] == "1"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert response.status_code == 200


def test_body_streamed_without_length_over_the_limit_is_a_413_problem(
    server: tuple[str, int],
) -> None:
    _, port = server
    kib_over_the_limit = build_settings().max_body_bytes // 1024 + 1

    def chunks() -> Iterator[bytes]:
        for _ in range(kib_over_the_limit):
            yield b"x" * 1024

    with httpx.Client(timeout=10) as client:
        response = client.post(
            f"http://127.0.0.1:{port}/v1/answers",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert set(problem) == {"type", "title", "status", "detail", "instance", "request_id"}
    assert problem["request_id"] == response.headers["x-request-id"]


def test_the_server_runs_on_uvloop() -> None:
    config = build_server_config(build_settings(corpus_dir=None), "127.0.0.1", 0)

    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_header_meter_counts_up_to_the_end_of_the_head() -> None:
    meter = HeaderMeter(20)
    assert meter.feed(b"GET / HTTP/1.1\r\n")  # 16 bytes, no end yet
    assert meter.feed(b"\r\nbody bytes after the head do not count")  # head is 18 bytes
    meter.reset()
    assert meter.feed(b"GET / HTTP/1.1\r")
    assert meter.feed(b"\nX: 1")  # 20 bytes so far
    assert not meter.feed(b"2")  # 21 bytes and no end of the head


def test_raw_problem_is_a_complete_closing_response() -> None:
    raw = render_raw_problem(431, "headers-too-large", "too big", (("retry-after", "1"),))
    reply = Reply(raw, True, 0.0)
    assert reply.status == 431
    assert reply.headers["connection"] == "close"
    assert reply.headers["retry-after"] == "1"
    assert reply.problem["title"] == "Request Header Fields Too Large"
    assert reply.problem["request_id"] == reply.headers["x-request-id"]


def test_python_m_service_reads_its_limits_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "QDRANT_PATH": ":memory:",
        "CORPUS_DIR": "",
        "PROMPTS_DIR": str(ROOT / "prompts"),
        "HTTP_PARSER": "httptools",
        "MAX_HEADER_BYTES": "2048",
        # Read only with WEB_CONCURRENCY > 1: one worker keeps in-memory metrics, no files.
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    (tmp_path / "metrics").mkdir()
    env.pop("MODEL_BASE_URL", None)
    env.pop("WEB_CONCURRENCY", None)
    log = tmp_path / "service.log"
    command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    with (
        log.open("w") as output,
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=output, stderr=output) as proc,
    ):
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            big = httpx.get(
                f"http://127.0.0.1:{port}/healthz", headers={"x-big": "a" * 3000}, timeout=5
            )
            assert big.status_code == 431
            assert big.headers["content-type"] == PROBLEM
            scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            assert 'promptrollouts_version_weight_percent{prompt="policy-qa"' in scrape
            assert not list((tmp_path / "metrics").iterdir())
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    # The app is built after uvicorn configures its loggers: uvicorn's lines are JSON too.
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert any(e["logger"] == "uvicorn.error" for e in events)
    assert any(e["logger"] == "service.server" and "2048 bytes" in e["event"] for e in events)


def test_response_before_the_body_was_read_closes_the_connection(
    server: tuple[str, int],
) -> None:
    _, port = server
    # GET /healthz never reads its body: the rest must not be taken for the next request.
    head = b"GET /healthz HTTP/1.1\r\nHost: t\r\ncontent-length: 100\r\n\r\n"
    with _connect(port) as sock:
        sock.sendall(head + b"GET /metrics HTTP/1.1\r\n")
        reply = _read_until_closed(sock, time.monotonic(), 5)
    assert reply.status == 200
    assert reply.headers["connection"] == "close"
    assert reply.closed and reply.raw.count(b"HTTP/1.1 ") == 1
