"""Notification events (pure): transitions read off the decision, payloads, signatures, settings."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from api.v1alpha1 import Phase
from controller.analysis import assess
from controller.notify_config import (
    check_dashboard_template,
    describe_endpoint,
    parse_webhook_urls,
    render_dashboard_url,
)
from controller.notify_delivery import decide_backoff
from controller.notify_events import (
    Transition,
    build_event,
    decide_transitions,
    render_body,
)
from controller.rollout import UnreadableVersion, decide
from controller.settings import ControllerSettings
from controller.signing import sign_body
from tests.controller.test_rollout import BASE, FAILING, HEALTHY, T0, apply, canary_at, pv

ANALYSIS = BASE.rollout.analysis


def _transitions(views: list[Any], assessment: Any = None, seconds: float = 1) -> dict[str, Any]:
    now = T0 + timedelta(seconds=seconds)
    changes = decide(views, assessment, now)
    return {
        name: (t.previous_phase, t.phase, t.reason)
        for name, t in decide_transitions(views, (), changes, now).items()
    }


def test_a_new_version_starts_progressing_and_the_stable_is_only_reweighted() -> None:
    views = [pv("1.0.0", Phase.STABLE, 100), pv("1.1.0")]
    found = _transitions(views)
    assert found == {
        "policy-qa-1-1-0": (Phase.PENDING, Phase.PROGRESSING, "rolling out over 1.0.0: step 1")
    }


def test_advancing_a_step_stays_progressing_and_is_no_transition() -> None:
    views = [pv("1.0.0", Phase.STABLE, 90), canary_at("1.1.0", Phase.PROGRESSING, 0)]
    changes = decide(views, assess(ANALYSIS, HEALTHY), T0 + timedelta(minutes=6))
    assert any(c.status.has("step_index") for c in changes), "the canary did advance"
    assert decide_transitions(views, (), changes, T0) == {}


def test_a_rollback_carries_the_deciding_analysis_and_its_quality_line() -> None:
    views = [
        pv("1.0.0", Phase.STABLE, 90),
        canary_at("1.1.0", Phase.PROGRESSING, 0, consecutive_failures=1, quality="Passed: ok"),
    ]
    now = T0 + timedelta(minutes=1)
    changes = decide(views, assess(ANALYSIS, FAILING), now)
    (transition,) = decide_transitions(views, (), changes, now).values()
    assert (transition.previous_phase, transition.phase) == (Phase.PROGRESSING, Phase.ROLLED_BACK)
    assert transition.reason.startswith("rolled back: ")
    assert transition.analysis is not None
    assert transition.analysis["verdict"] == "Failed"
    assert transition.analysis["values"]["canary"]["errorRate"] == 0.2
    assert "queries" not in transition.analysis
    # This analysis measured no quality checks: the line it writes (none) wins over the old one.
    assert transition.analysis["quality"] is None
    assert any(c.status.has("quality") for c in changes)
    assert transition.time == now


def test_deciding_again_after_the_patch_announces_nothing() -> None:
    views = [pv("1.0.0", Phase.STABLE, 100), pv("1.1.0")]
    changes = decide(views, None, T0)
    after = apply(views, changes)
    assert decide_transitions(after, (), decide(after, None, T0), T0) == {}


def test_an_unreadable_version_going_invalid_is_a_transition() -> None:
    broken = UnreadableVersion("policy-qa-9-0-0", "spec.x: bad", Phase.STABLE)
    changes = decide([], None, T0, [broken])
    (transition,) = decide_transitions([], [broken], changes, T0).values()
    assert (transition.version, transition.previous_phase, transition.phase) == (
        None,
        Phase.STABLE,
        Phase.INVALID,
    )


TRANSITION = Transition(
    name="policy-qa-1-1-0",
    version="1.1.0",
    previous_phase=Phase.PROGRESSING,
    phase=Phase.ROLLED_BACK,
    reason="rolled back: error rate 20 %",
    analysis={"verdict": "Failed", "reasons": ["error rate 20 %"], "quality": "Failed: refusals"},
    time=T0,
)


def test_the_event_has_every_field_the_docs_promise() -> None:
    event = build_event(
        TRANSITION,
        prompt="policy qa",
        namespace="prod",
        event_id="abc",
        dashboard_template="https://grafana.example/d/x?var-prompt={prompt}&var-version={version}",
    )
    assert event == {
        "id": "abc",
        "prompt": "policy qa",
        "namespace": "prod",
        "name": "policy-qa-1-1-0",
        "version": "1.1.0",
        "phase": "RolledBack",
        "previousPhase": "Progressing",
        "reason": "rolled back: error rate 20 %",
        "analysis": TRANSITION.analysis,
        "time": "2026-11-25T12:00:00Z",
        "links": {
            "dashboard": "https://grafana.example/d/x?var-prompt=policy%20qa&var-version=1.1.0"
        },
    }


def test_the_signature_is_the_hmac_of_the_exact_bytes() -> None:
    event = build_event(TRANSITION, prompt="p", namespace=None, event_id="1")
    body = render_body(event, "json")
    assert json.loads(body) == event
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign_body(body, "s3cret") == f"sha256={expected}"
    assert sign_body(body + b" ", "s3cret") != sign_body(body, "s3cret")
    assert sign_body(body, "other") != sign_body(body, "s3cret")


def test_the_slack_format_is_an_incoming_webhook_payload() -> None:
    event = build_event(
        TRANSITION, prompt="p", namespace="n", event_id="1", dashboard_template="https://d/{phase}"
    )
    payload = json.loads(render_body(event, "slack"))
    assert set(payload) == {"text", "blocks"}
    assert payload["text"].startswith("*p* 1.1.0: Progressing → *RolledBack*")
    assert "Quality: Failed: refusals" in payload["text"]
    assert "<https://d/RolledBack|Dashboard>" in payload["text"]
    assert payload["blocks"][0]["text"] == {"type": "mrkdwn", "text": payload["text"]}


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [(1, None, 0.5), (2, None, 1.0), (4, None, 4.0), (20, None, 60.0), (1, "7", 7.0),
     (1, "9999", 60.0), (3, "soon", 2.0)],
    ids=["first", "doubles", "fourth", "capped", "retry-after", "retry-after-capped",
         "bad-retry-after"],
)  # fmt: skip
def test_backoff(attempt: int, retry_after: str | None, expected: float) -> None:
    assert decide_backoff(attempt, 0.5, retry_after) == expected


def test_urls_are_parsed_and_described_without_their_path() -> None:
    urls = parse_webhook_urls(
        " https://hooks.slack.com/services/T0/B0/XYZ , http://10.0.0.1:8080/h,"
    )
    assert urls == ("https://hooks.slack.com/services/T0/B0/XYZ", "http://10.0.0.1:8080/h")
    assert describe_endpoint(urls[0]) == "https://hooks.slack.com"
    assert describe_endpoint(urls[1]) == "http://10.0.0.1:8080"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://x/y", "entry 1 is not an http\\(s\\) URL"),
        ("https://a/b,hooks.example/c", "entry 2 is not an http\\(s\\) URL"),
        ("https://user:pw@a/b", "entry 1 carries credentials"),
        ("https://a:0/b", "entry 1 has an invalid port"),
        ("https://a/b,https://a/b", "entry 2 repeats"),
    ],
    ids=["scheme", "no-scheme", "credentials", "port", "repeat"],
)
def test_bad_urls_are_named_by_position(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_webhook_urls(value)


def test_dashboard_templates() -> None:
    check_dashboard_template("https://g/d?p={prompt}&v={version}&ns={namespace}&ph={phase}")
    assert render_dashboard_url("", {"prompt": "x"}) is None
    assert render_dashboard_url("https://g/{prompt}", {"prompt": "a/b&c"}) == "https://g/a%2Fb%26c"
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) prompt.__class__"):
        check_dashboard_template("https://g/{prompt.__class__}")
    with pytest.raises(ValueError, match="NOTIFY_DASHBOARD_URL"):
        check_dashboard_template("https://g/{prompt")
    with pytest.raises(ValueError, match="not an http"):
        check_dashboard_template("javascript:alert({prompt})")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NOTIFY_WEBHOOK_URLS": "https://h/x"}, "NOTIFY_SECRET is required"),
        ({"NOTIFY_WEBHOOK_URLS": "hooks/xyz-token", "NOTIFY_SECRET": "k"}, "not an http"),
        ({"NOTIFY_FORMAT": "xml"}, "notify_format"),
        ({"NOTIFY_DASHBOARD_URL": "https://g/{user}"}, "unknown placeholder"),
        ({"NOTIFY_QUEUE_SIZE": "0"}, "notify_queue_size"),
    ],
    ids=["no-secret", "bad-url", "format", "dashboard", "queue"],
)
def test_bad_settings_fail_at_start_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message) as caught:
        ControllerSettings()
    assert "xyz-token" not in str(caught.value)


def test_slack_needs_no_secret_and_defaults_send_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ControllerSettings().notify_urls == ()
    monkeypatch.setenv("NOTIFY_WEBHOOK_URLS", "https://hooks.slack.com/services/T/B/C")
    monkeypatch.setenv("NOTIFY_FORMAT", "slack")
    assert ControllerSettings().notify_urls == ("https://hooks.slack.com/services/T/B/C",)


def test_a_long_reason_fits_slacks_section_limit() -> None:
    long = Transition(**{**TRANSITION.__dict__, "reason": "x" * 5000})
    event = build_event(long, prompt="p", namespace=None, event_id="1")
    payload = json.loads(render_body(event, "slack"))
    assert len(payload["blocks"][0]["text"]["text"]) == 3000
    assert "x" * 5000 in payload["text"]
