"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from service.answering.schemas import HealthResponse
from service.dependencies import MetricsDep, ResourcesDep

__all__ = ["metrics_router", "router"]

router = APIRouter(tags=["operations"])
#: Left out of the app when METRICS_PORT gives /metrics a listener of its own.
metrics_router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    """The process is alive (no dependency is checked)."""
    return HealthResponse(status="ok")


@router.get("/readyz", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def readyz(resources: ResourcesDep) -> HealthResponse | JSONResponse:
    """Prompts are loaded, the vector store answers, and Redis too when REDIS_URL is set
    (without it, requests with an Idempotency-Key would fail)."""
    try:
        await resources.store.collection_names()
    except Exception as error:
        body = HealthResponse(status="unavailable", detail=f"vector store: {type(error).__name__}")
        return JSONResponse(body.model_dump(), status_code=503)
    if resources.redis is not None:
        try:
            await resources.redis.ping()
        except Exception as error:
            body = HealthResponse(status="unavailable", detail=f"redis: {type(error).__name__}")
            return JSONResponse(body.model_dump(), status_code=503)
    if not resources.catalog.ready:
        body = HealthResponse(status="unavailable", detail="PromptVersions not listed yet")
        return JSONResponse(body.model_dump(), status_code=503)
    if not any(v.weight > 0 for v in resources.catalog.registry.versions()):
        body = HealthResponse(status="unavailable", detail="no servable PromptVersion")
        return JSONResponse(body.model_dump(), status_code=503)
    return HealthResponse(status="ok")


@metrics_router.get("/metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus exposition of the service's metrics."""
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
