"""The controller's notification settings: values → NOTIFY_* environment, secrets by reference."""

from __future__ import annotations

from typing import Any

import helm_sdkpy
import pytest

from tests.chart.conftest import Helm
from tests.chart.test_chart import container, env_of
from tests.chart.test_documented_values import _readme_values


def _notify_env(helm: Helm, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    env = env_of(container(helm.install(values), "controller"))
    return {name: e for name, e in env.items() if name.startswith("NOTIFY_")}


def test_no_urls_render_no_notify_environment(helm: Helm) -> None:
    assert _notify_env(helm, {}) == {}


def test_the_documented_values_sign_with_a_secret_reference(helm: Helm) -> None:
    env = _notify_env(helm, _readme_values("Notifications"))
    assert env["NOTIFY_WEBHOOK_URLS"]["value"] == "https://hooks.example.com/prompt-rollouts"
    assert env["NOTIFY_SECRET"] == {
        "name": "NOTIFY_SECRET",
        "valueFrom": {"secretKeyRef": {"name": "prompt-rollouts-notify", "key": "secret"}},
    }
    assert env["NOTIFY_FORMAT"]["value"] == "json"
    assert env["NOTIFY_DASHBOARD_URL"]["value"].endswith(
        "var-prompt={prompt}&var-version={version}"
    )
    assert {k: env[k]["value"] for k in ("NOTIFY_QUEUE_SIZE", "NOTIFY_MAX_ATTEMPTS")} == {
        "NOTIFY_QUEUE_SIZE": "1000",
        "NOTIFY_MAX_ATTEMPTS": "6",
    }


def test_slack_urls_come_from_the_secret(helm: Helm) -> None:
    values = {
        "controller": {
            "notifications": {
                "format": "slack",
                "secret": {"name": "notify", "key": "secret", "urlsKey": "urls"},
            }
        }
    }
    env = _notify_env(helm, values)
    assert env["NOTIFY_WEBHOOK_URLS"]["valueFrom"] == {
        "secretKeyRef": {"name": "notify", "key": "urls"}
    }
    assert env["NOTIFY_FORMAT"]["value"] == "slack"
    assert "value" not in env["NOTIFY_SECRET"]


@pytest.mark.parametrize(
    ("notifications", "message"),
    [
        ({"urls": ["https://h/x"]}, "secret.name is required with webhook URLs"),
        ({"secret": {"urlsKey": "urls"}}, "urlsKey needs secret.name"),
        (
            {"urls": ["https://h/x"], "secret": {"name": "s", "urlsKey": "urls"}},
            "set urls or secret.urlsKey, not both",
        ),
    ],
    ids=["unsigned", "urls-key-without-secret", "both"],
)
def test_incomplete_settings_fail_with_a_message(
    helm: Helm, notifications: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm_sdkpy.InstallError) as caught:
        helm.install({"controller": {"notifications": notifications}})
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("notifications", "where"),
    [
        ({"urls": ["ftp://h/x"]}, "/controller/notifications/urls/0"),
        ({"urls": ["https://user:pw@h/x"]}, "/controller/notifications/urls/0"),
        ({"format": "xml"}, "/controller/notifications/format"),
        ({"secret": {"value": "inline"}}, "/controller/notifications/secret"),
    ],
    ids=["scheme", "credentials-in-url", "format", "inline-secret"],
)
def test_schema_rejects_bad_notification_values(
    helm: Helm, notifications: dict[str, Any], where: str
) -> None:
    with pytest.raises(helm_sdkpy.InstallError) as caught:
        helm.install({"controller": {"notifications": notifications}})
    assert "values don't meet the specifications of the schema" in str(caught.value)
    assert where in str(caught.value)
