"""Run a throwaway ``redis-server`` on a free 127.0.0.1 port, in a temporary directory."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.support.net import free_port

__all__ = ["REDIS_SERVER", "run_redis_server"]

#: The Debian binary (``make system-deps``); ``None`` when it is not installed.
REDIS_SERVER: str | None = shutil.which("redis-server") or (
    "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
)


def _answers_ping(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False
    finally:
        client.close()


@contextmanager
def run_redis_server(startup_timeout: float = 10.0) -> Iterator[str]:
    """Start redis-server (no persistence); yields its ``redis://`` URL; stops it on exit."""
    if REDIS_SERVER is None:
        raise FileNotFoundError("redis-server is not installed (run `make system-deps`)")
    workdir = Path(tempfile.mkdtemp(prefix="redis-test-"))
    log_path = workdir / "redis.log"
    port = free_port()
    command = [
        REDIS_SERVER,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
        "--logfile", str(log_path),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _answers_ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                log = log_path.read_text() if log_path.exists() else ""
                raise RuntimeError(f"redis-server did not start on port {port}:\n{log}")
            time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
