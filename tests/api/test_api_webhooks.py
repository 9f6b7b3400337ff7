"""spec.rollout.webhooks in the pydantic models: what the controller accepts, and why not."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.v1alpha1 import Rollout, Webhook, WebhookType


def _hook(**fields: Any) -> dict[str, Any]:
    return {"name": "gate", "type": "pre-rollout", "url": "https://gate.example.com/x", **fields}


def test_defaults() -> None:
    hook = Webhook.model_validate(_hook())
    assert (hook.type, hook.timeout_seconds, hook.metadata) == (WebhookType.PRE_ROLLOUT, 10, {})
    assert Rollout().webhooks == []


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"url": "ftp://gate.example.com"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": "https://gate example.com"}, "url"),
        ({"type": "pre_rollout"}, "type"),
        ({"timeoutSeconds": 0}, "timeoutSeconds"),
        ({"timeoutSeconds": 61}, "timeoutSeconds"),
        ({"metadata": {"k": "v" * 1025}}, "metadata"),
        ({"metadata": {f"k{i}": "v" for i in range(33)}}, "metadata"),
        ({"secret": "x"}, "secret"),
    ],
    ids=[
        "ftp",
        "no-host",
        "space",
        "type",
        "timeout-0",
        "timeout-61",
        "long-value",
        "many-keys",
        "unknown-field",
    ],
)
def test_bad_webhooks_name_the_field(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Webhook.model_validate(_hook(**fields))
    assert problem in str(caught.value)


def test_webhook_names_are_unique() -> None:
    with pytest.raises(ValidationError, match="webhook names must be unique, repeated: gate"):
        Rollout.model_validate({"webhooks": [_hook(), _hook(type="rollback")]})
