"""Controller configuration, from the environment (docs/configuration.md)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from controller.notify_config import check_dashboard_template, parse_webhook_urls

__all__ = ["ControllerSettings"]


class ControllerSettings(BaseSettings):
    """Everything the controller reads from its environment (prefix CONTROLLER_ or none)."""

    # Inputs stay out of validation errors: webhook URLs and the secret are credentials.
    model_config = SettingsConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    prometheus_url: str = Field(
        default="http://127.0.0.1:9090", description="Prometheus server the analyses query."
    )
    prometheus_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Timeout of one Prometheus query."
    )
    controller_tick_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often each prompt's rollout is reconsidered."
    )
    controller_metrics_port: int = Field(
        default=8081, ge=0, le=65535, description="Port of the controller's /metrics; 0 disables."
    )
    controller_metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - scraped by Prometheus from outside the pod
        description="Address the controller's /metrics binds to.",
    )
    controller_priority: int | None = Field(
        default=None,
        ge=1,
        description="Peering priority; unset draws a random one so HA replicas never tie.",
    )
    notify_webhook_urls: str = Field(
        default="",
        description="Comma-separated http(s) URLs that receive a signed event on every phase "
        "change; empty sends none.",
    )
    notify_secret: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC-SHA256 key of the X-Prompt-Rollouts-Signature header (required "
        "with NOTIFY_WEBHOOK_URLS unless NOTIFY_FORMAT=slack).",
    )
    notify_format: Literal["json", "slack"] = Field(
        default="json", description="json (the event) or slack (an incoming-webhook payload)."
    )
    notify_dashboard_url: str = Field(
        default="",
        description="links.dashboard template; {prompt}, {version}, {namespace}, {phase}.",
    )
    notify_queue_size: int = Field(
        default=1000, ge=1, le=100_000, description="Events waiting per URL; full drops oldest."
    )
    notify_max_attempts: int = Field(
        default=6, ge=1, le=50, description="Delivery attempts of one event to one URL."
    )
    notify_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Timeout of one delivery attempt."
    )
    notify_backoff_seconds: float = Field(
        default=1.0, gt=0, le=60, description="First retry delay; doubles up to 60 s."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC-SHA256 signature of webhook calls "
        "(X-Prompt-Rollouts-Signature); unset sends them unsigned.",
    )

    service_url: str = Field(
        default="",
        pattern=r"^(https?://[^\s/?#]+[^\s]*)?$",
        description="Base URL of the answering service the eval gates ask "
        "(spec.rollout.evalGate); empty fails every eval gate with that reason.",
    )
    service_api_key: SecretStr | None = Field(
        default=None,
        description="API key the eval gates send to the service (Authorization: Bearer), "
        "when it runs with AUTH_MODE=api-key.",
    )

    @field_validator("notify_webhook_urls")
    @classmethod
    def _urls(cls, value: str) -> str:
        parse_webhook_urls(value)
        return value

    @field_validator("notify_dashboard_url")
    @classmethod
    def _dashboard(cls, value: str) -> str:
        check_dashboard_template(value)
        return value

    @model_validator(mode="after")
    def _signed(self) -> Self:
        if (
            self.notify_urls
            and self.notify_format == "json"
            and not self.notify_secret.get_secret_value()
        ):
            raise ValueError("NOTIFY_SECRET is required when NOTIFY_WEBHOOK_URLS is set")
        return self

    @property
    def notify_urls(self) -> tuple[str, ...]:
        """The parsed NOTIFY_WEBHOOK_URLS."""
        return parse_webhook_urls(self.notify_webhook_urls)
