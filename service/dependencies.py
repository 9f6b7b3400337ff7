"""Typed dependencies for handlers: the lifespan's resources, by piece."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from service.answering.pipeline import AnswerService
from service.catalog.registry import PromptRegistry
from service.http.auth import Caller
from service.http.feedback import Feedback
from service.http.idempotency import Idempotency
from service.resources import Resources
from service.settings import Settings
from service.telemetry.metrics import Metrics

__all__ = [
    "AnswerServiceDep",
    "CallerDep",
    "FeedbackDep",
    "IdempotencyDep",
    "IdempotencyKeyHeader",
    "MetricsDep",
    "NoShadowHeader",
    "RegistryDep",
    "RequestIdDep",
    "ResourcesDep",
    "SettingsDep",
    "read_caller",
    "read_request_id",
    "read_resources",
]


# Plain readers, for hot routes: FastAPI resolves each `Depends` per request (a solve
# with its own parameter passes), which cost the answer route more CPU than its own code.


def read_resources(request: Request) -> Resources:
    """The resources the lifespan opened."""
    resources: Resources = request.app.state.resources
    return resources


def read_request_id(request: Request) -> str:
    """The id RequestIdMiddleware assigned to this request."""
    request_id: str = request.scope["state"]["request_id"]
    return request_id


def read_caller(request: Request) -> Caller:
    """Who sent the request, as AccessMiddleware authenticated it."""
    caller: Caller = request.scope["state"]["caller"]
    return caller


async def get_resources(request: Request) -> Resources:
    """The resources the lifespan opened."""
    return read_resources(request)


async def get_request_id(request: Request) -> str:
    """The id RequestIdMiddleware assigned to this request."""
    return read_request_id(request)


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_answer_service(resources: ResourcesDep) -> AnswerService:
    """The answering pipeline."""
    return resources.answers


async def get_registry(resources: ResourcesDep) -> PromptRegistry:
    """The served PromptVersions."""
    return resources.catalog.registry


async def get_metrics(resources: ResourcesDep) -> Metrics:
    """The app's metrics."""
    return resources.metrics


async def get_settings(resources: ResourcesDep) -> Settings:
    """The app's settings."""
    return resources.settings


async def get_idempotency(resources: ResourcesDep) -> Idempotency:
    """Idempotency-Keys: leases, replays and stored responses."""
    return resources.idempotency


async def get_feedback(resources: ResourcesDep) -> Feedback:
    """Request ids remembered for feedback, and the ratings."""
    return resources.feedback


async def get_caller(request: Request) -> Caller:
    """Who sent the request, as AccessMiddleware authenticated it."""
    return read_caller(request)


CallerDep = Annotated[Caller, Depends(get_caller)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
FeedbackDep = Annotated[Feedback, Depends(get_feedback)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
AnswerServiceDep = Annotated[AnswerService, Depends(get_answer_service)]
RegistryDep = Annotated[PromptRegistry, Depends(get_registry)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]

#: ``X-No-Shadow: true``: no canary answers the request in the background (shadow steps).
NoShadowHeader = Annotated[
    bool,
    Header(
        alias="X-No-Shadow",
        description="`true`: no canary answers this request in the background (a shadow "
        "step's shadow answer).",
    ),
]
#: ``Idempotency-Key``: a repeat with the same key and body replays the first response.
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Makes retries safe: a repeat with the same key and body replays "
        "the first response instead of answering again.",
    ),
]
