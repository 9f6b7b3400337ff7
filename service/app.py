"""The FastAPI application factory (served by ``python -m service``, see service/server.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.logs import configure_logging
from service.middleware import (
    BodySizeLimitMiddleware,
    CancelOnDisconnectMiddleware,
    HeaderCheckMiddleware,
    RequestIdMiddleware,
)
from service.problems import install_problem_handlers
from service.resources import open_resources
from service.routers import answers, health, prompts
from service.settings import Settings
from service.shedding import InflightLimiter, LoadSheddingMiddleware
from service.tracing import configure_tracing

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Assemble the app; settings come from the environment unless given."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    limiter = InflightLimiter(settings.max_inflight)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings) as resources:
            tracing = configure_tracing(app, resources.http)
            app.state.resources = resources
            resources.metrics.inflight_requests.set_function(lambda: limiter.inflight)
            try:
                yield
            finally:
                if tracing is not None:
                    tracing.shutdown()

    app = FastAPI(
        title="prompt-rollouts",
        version="0.1.0",
        summary="Answers questions with versioned, progressively delivered prompts.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)

    def count_shed() -> None:
        resources = getattr(app.state, "resources", None)
        if resources is not None:
            resources.metrics.shed_requests.inc()

    # Outermost last: request id → header check → body read (size, time) → shedding → cancel.
    app.add_middleware(CancelOnDisconnectMiddleware)
    app.add_middleware(LoadSheddingMiddleware, limiter=limiter, on_shed=count_shed)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout_seconds,
    )
    app.add_middleware(HeaderCheckMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(answers.router)
    app.include_router(prompts.router)
    app.include_router(health.router)
    return app
