"""The FastAPI application factory (served by ``python -m service``, see service/server.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from service.garbage_collection import settle_heap
from service.http.access import (
    AccessMiddleware,
    decide_bind_host,
    install_access_problem_handlers,
)
from service.http.answer_fast_path import AnswerFastPath
from service.http.middleware import (
    BodySizeLimitMiddleware,
    CancelOnDisconnectMiddleware,
    HeaderCheckMiddleware,
    RequestIdMiddleware,
)
from service.http.openai_errors import OpenAIErrorMiddleware
from service.http.problems import install_problem_handlers
from service.http.routers import answers, chat_completions, feedback, health, models, prompts
from service.http.shedding import (
    InflightLimiter,
    LoadSheddingMiddleware,
    ReportingInflightLimiter,
)
from service.resources import open_resources
from service.settings import Settings
from service.telemetry.logs import configure_logging
from service.telemetry.metrics_server import serve_metrics
from service.telemetry.multiprocess_env import multiprocess_dir
from service.telemetry.tracing import configure_tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["create_app"]


def stamp_tenant(provider: TracerProvider) -> None:
    """Add the tenant stamp to a provider's spans (the OpenTelemetry SDK loads only now)."""
    from service.http.tenant_spans import TenantSpanProcessor  # noqa: PLC0415 - tracing only

    provider.add_span_processor(TenantSpanProcessor())


def create_app(
    settings: Settings | None = None,
    bind_host: str | None = None,
    tracer_provider: TracerProvider | None = None,
    *,
    settle_gc: bool = False,
) -> FastAPI:
    """Assemble the app; settings come from the environment unless given.

    ``bind_host`` is the address the server listens on; by default it is read from
    uvicorn's command line (``--host``) or ``UVICORN_HOST``, as uvicorn does.
    ``tracer_provider`` traces the app through a provider the caller owns (tests collect
    spans in memory this way) whatever the ``OTEL_*`` variables say; by default the
    lifespan builds one from them, or none. ``settle_gc`` sets Python's garbage collector
    for a server once start-up is over (``GC_GEN0_THRESHOLD``): the process that serves
    the app asks for it; an app built in a test or a tool leaves its process's collector alone.
    """
    settings = settings or Settings()
    host = bind_host or decide_bind_host(sys.argv, os.environ)
    configure_logging(settings.log_level)
    # Several workers (WEB_CONCURRENCY): the in-flight gauge is set on every change, in
    # files a scrape adds up; one worker reads the count only when scraped.
    limiter = (
        ReportingInflightLimiter(settings.max_inflight)
        if multiprocess_dir() is not None
        else InflightLimiter(settings.max_inflight)
    )
    if tracer_provider is not None:
        stamp_tenant(tracer_provider)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            resources = await stack.enter_async_context(open_resources(settings))
            resources.access.warn_if_exposed(host)
            if settings.metrics_port is not None:
                await stack.enter_async_context(
                    serve_metrics(resources.metrics, host, settings.metrics_port)
                )
            tracing = configure_tracing(
                app, resources.http, resources.tracing, provider=tracer_provider
            )
            if tracing is not None:
                if tracing.owns_provider:  # a caller's provider got its stamp above
                    stamp_tenant(tracing.provider)
                stack.callback(tracing.shutdown)
            app.state.resources = resources
            if isinstance(limiter, ReportingInflightLimiter):
                limiter.report = resources.metrics.inflight_requests.set
            else:
                resources.metrics.inflight_requests.set_function(lambda: limiter.inflight)
            if settle_gc:
                settle_heap(settings.gc_gen0_threshold)
            yield

    app = FastAPI(
        title="prompt-rollouts",
        version="0.1.0",
        summary="Answers questions with versioned, progressively delivered prompts.",
        lifespan=lifespan,
        openapi_url="/openapi.json" if settings.openapi else None,
        docs_url="/docs" if settings.openapi else None,
        redoc_url="/redoc" if settings.openapi else None,
    )
    install_problem_handlers(app)
    install_access_problem_handlers(app)

    def count_shed() -> None:
        resources = getattr(app.state, "resources", None)
        if resources is not None:
            resources.metrics.shed_requests.inc()

    # Outermost last: OpenAI error shapes (OpenAI paths only) → request id → header check →
    # access (key, quota) → body read (size, time) → shedding → cancel on disconnect →
    # plain answers without FastAPI's routing (everything else goes on to the routes).
    app.add_middleware(AnswerFastPath)
    app.add_middleware(CancelOnDisconnectMiddleware)
    app.add_middleware(LoadSheddingMiddleware, limiter=limiter, on_shed=count_shed)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout_seconds,
    )
    app.add_middleware(AccessMiddleware)
    app.add_middleware(HeaderCheckMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(OpenAIErrorMiddleware)
    app.include_router(answers.router)
    app.include_router(chat_completions.router)
    app.include_router(models.router)
    app.include_router(feedback.router)
    app.include_router(prompts.router)
    app.include_router(health.router)
    if settings.metrics_port is None:
        app.include_router(health.metrics_router)
    return app
