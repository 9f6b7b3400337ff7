"""The receiver docs/rollouts.md ("Notifications") shows works as written: it accepts what
the controller's own sender signs and refuses anything else."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from controller.metrics import ControllerMetrics
from controller.notify_delivery import Notifier
from rehearsal.net import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SECRET = "docs-secret"


def _receiver_code() -> str:
    text = (ROOT / "docs" / "rollouts.md").read_text(encoding="utf-8")
    section = text.split("## Notifications\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no python block under ## Notifications"
    return match.group(1)


def test_the_documented_receiver_verifies_what_the_controller_sends(tmp_path: Path) -> None:
    script = tmp_path / "receiver.py"
    script.write_text(_receiver_code(), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "NOTIFY_SECRET": SECRET, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                refused = httpx.post(url, content=b"{}", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the documented receiver did not start"
                time.sleep(0.1)
        assert refused.status_code == 401  # unsigned
        forged = httpx.post(
            url, content=b"{}", headers={b"X-Prompt-Rollouts-Signature": b"sha256=\xe9"}, timeout=2
        )
        assert forged.status_code == 401  # a non-ASCII header is refused, not a crash
        event = {
            "id": "e1",
            "prompt": "policy-qa",
            "version": "1.1.0",
            "previousPhase": "Progressing",
            "phase": "RolledBack",
            "reason": "rolled back: error rate",
        }
        metrics = ControllerMetrics()

        async def send() -> None:
            sender = Notifier((url,), SECRET, metrics, backoff_seconds=0.05)
            sender.start()
            sender.submit(event, ("k",))
            await sender.stop(grace_seconds=10)

        asyncio.run(send())
        delivered = metrics.registry.get_sample_value(
            "promptrollouts_notifications_total",
            {"endpoint": f"http://127.0.0.1:{port}", "result": "delivered"},
        )
        assert delivered == 1
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert "e1 policy-qa 1.1.0 Progressing -> RolledBack: rolled back: error rate" in out.decode()
    assert "Traceback" not in err.decode()
