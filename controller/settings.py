"""Controller configuration, from the environment (docs/configuration.md)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ControllerSettings"]


class ControllerSettings(BaseSettings):
    """Everything the controller reads from its environment (prefix CONTROLLER_ or none)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

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
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC-SHA256 signature of webhook calls "
        "(X-Prompt-Rollouts-Signature); unset sends them unsigned.",
    )
