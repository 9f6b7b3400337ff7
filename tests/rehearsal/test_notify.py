"""The scenario key ``notify``: validation, the controller's environment, what is reported,
and the summary; the rehearsal end to end whose controller notifies a local receiver is the
shipped shadow-catches-bad-canary scenario (test_rehearse_examples.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rehearsal.notify import NotifyBehaviour, build_notifications, build_notify_env, run_receiver
from rehearsal.scenario import ScenarioError
from rehearsal.scenario_loading import load_scenario
from rehearsal.view import render_summary

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "rehearsals"


def _write(folder: Path, **changes: Any) -> Path:
    scenario = yaml.safe_load((EXAMPLES / "errors.yaml").read_text())
    scenario["corpus"]["dir"] = str(ROOT / "data" / "policies")
    scenario.update(changes)
    for part in ("manifests", "questions.txt"):
        source = EXAMPLES / part
        if not (folder / part).exists():
            (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / part)
    path = folder / "notify.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return path


def test_a_notify_key_is_loaded(tmp_path: Path) -> None:
    loaded = load_scenario(_write(tmp_path, notify={"receiver": True, "secret": "s3cret"}))
    assert loaded.scenario.notify == NotifyBehaviour(receiver=True, secret="s3cret")
    assert load_scenario(_write(tmp_path)).scenario.notify is None


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        ({"receiver": False, "secret": "s"}, "notify.receiver: Input should be True"),
        ({"receiver": True, "secret": ""}, "notify.secret: String should have at least 1"),
        ({"receiver": True}, "notify.secret: Field required"),
        ({"receiver": True, "secret": "s", "url": "http://x"}, "notify.url: Extra inputs"),
    ],
    ids=["no-receiver", "empty-secret", "no-secret", "unknown-key"],
)
def test_a_bad_notify_key_names_the_field(tmp_path: Path, notify: Any, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_scenario(_write(tmp_path, notify=notify))


def test_the_receiver_reports_each_request_verified_or_not() -> None:
    assert build_notify_env(None) == {}
    with run_receiver(NotifyBehaviour(receiver=True, secret="k")) as receiver:
        assert receiver is not None
        env = build_notify_env(receiver)
        assert env["NOTIFY_WEBHOOK_URLS"] == receiver.url and env["NOTIFY_SECRET"] == "k"
        body = json.dumps({"phase": "RolledBack"}).encode()
        good = b"sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest().encode()
        for signature in (good, b"sha256=" + b"0" * 64, None, b"sha256=\xe9"):
            headers = {b"X-Prompt-Rollouts-Signature": signature} if signature else {}
            httpx.post(receiver.url, content=body, headers=headers, timeout=5).raise_for_status()
        received, notes = build_notifications(receiver)
    assert [r["verified"] for r in received] == [True, False, False, False]
    assert received[0] == {"verified": True, "status": 200, "event": {"phase": "RolledBack"}}
    assert notes == ["notify: 3 of 4 notification(s) failed verification"]


def test_an_empty_receiver_says_so() -> None:
    with run_receiver(NotifyBehaviour(receiver=True, secret="k")) as receiver:
        assert receiver is not None
        assert build_notifications(receiver) == ([], ["notify: the receiver got no notification"])
    with run_receiver(None) as nothing:
        assert nothing is None


def test_the_summary_counts_what_was_received_and_verified() -> None:
    result = {
        "scenario": "s.yaml",
        "elapsedSeconds": 9.0,
        "versions": {},
        "notifications": [
            {"verified": True, "status": 503, "event": {"version": "1.0.0", "phase": "Stable"}},
            {"verified": True, "status": 200, "event": {"version": "1.0.0", "phase": "Stable"}},
            {"verified": False, "status": 200, "event": None},
        ],
    }
    summary = render_summary(result, [])
    # The list names what was accepted and verified: a retried event once, a forgery never.
    assert "  notifications: 3 received, 2 verified: 1.0.0 Stable\n" in summary + "\n"
    del result["notifications"]
    assert "notifications" not in render_summary(result, [])
