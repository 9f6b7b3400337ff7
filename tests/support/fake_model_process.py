"""The fake model in a process of its own (uvicorn on 127.0.0.1), for load tests.

In a thread of the test process it would share the GIL with the service under test;
a separate process lets each use a core, as a real upstream would.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.net import free_port

__all__ = ["run_fake_model_process"]

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def run_fake_model_process(startup_timeout: float = 30.0) -> Iterator[str]:
    """Start `fakemodel.app` under uvicorn; yields its base URL; stops the process on exit."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "uvicorn", "--factory", "fakemodel.app:create_fake_model_app"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
            "--no-access-log",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"fake model exited with {process.returncode}")
            try:
                httpx.get(f"{url}/v1/models", timeout=1.0).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("fake model did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
