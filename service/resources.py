"""The shared clients and state the app's lifespan opens, and how they are opened."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from qdrant_client import AsyncQdrantClient

from api.client import PromptVersionClient, build_http_client, load_kube_config
from service.answering import AnswerService
from service.catalog import Catalog
from service.chat import ChatModel
from service.chunking import read_documents
from service.embeddings import Embedder, build_embedder
from service.extractive import ExtractiveAnswerer
from service.idempotency import IdempotencyStore, build_idempotency_store
from service.indexing import index_documents
from service.metrics import Metrics, MetricsObserver
from service.openai_chat import OpenAIChatModel
from service.registry import PromptRegistry
from service.request_log import ContentMode, RequestLogger
from service.resilience.breaker import BreakerConfig
from service.resilience.caller import ResilienceConfig, ResilientChatModel
from service.retrieval import Retriever
from service.settings import Settings
from service.sources import load_file_registry, watch_cluster, watch_routing_file
from service.vectorstore import open_qdrant

__all__ = ["Resources", "index_corpora", "open_resources"]

_log = logging.getLogger(__name__)


@dataclass
class Resources:
    """Everything handlers share; owned by the app's lifespan."""

    settings: Settings
    http: httpx.AsyncClient
    qdrant: AsyncQdrantClient
    embedder: Embedder
    catalog: Catalog
    chat: ChatModel
    answers: AnswerService
    metrics: Metrics
    idempotency: IdempotencyStore


def build_resilience_config(settings: Settings) -> ResilienceConfig:
    """The resilience layer's knobs, from the settings."""
    return ResilienceConfig(
        max_attempts=settings.model_max_attempts,
        attempt_timeout=settings.model_attempt_timeout_seconds,
        max_deadline=settings.model_max_deadline_seconds,
        backoff_base=settings.model_backoff_base_seconds,
        backoff_cap=settings.model_backoff_max_seconds,
        breaker=BreakerConfig(
            consecutive_failures=settings.breaker_consecutive_failures,
            failure_rate=settings.breaker_failure_rate,
            window_seconds=settings.breaker_window_seconds,
            min_calls=settings.breaker_min_calls,
            cool_down_seconds=settings.breaker_cool_down_seconds,
            half_open_probes=settings.breaker_half_open_probes,
        ),
        budget_ratio=settings.model_retry_budget_ratio,
        budget_reserve=settings.model_retry_budget_reserve,
        rpm=settings.model_rpm,
        tpm=settings.model_tpm,
        limits={name: (limit.rpm, limit.tpm) for name, limit in settings.model_limits.items()},
    )


def build_chat_model(
    settings: Settings, http: httpx.AsyncClient, embedder: Embedder, metrics: Metrics
) -> ChatModel:
    """The configured model: an OpenAI-compatible server behind the resilience layer, or the
    embedded extractive answerer."""
    if settings.model_base_url is None:
        return ExtractiveAnswerer(embedder)
    key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    upstream = OpenAIChatModel(http, settings.model_base_url, key)
    return ResilientChatModel(
        upstream, build_resilience_config(settings), observer=MetricsObserver(metrics)
    )


async def open_catalog(
    settings: Settings, collections: set[str], metrics: Metrics, stack: AsyncExitStack
) -> Catalog:
    """The served PromptVersions, kept current by a background task where they can change."""
    if settings.prompt_source == "cluster":
        config = load_kube_config()
        namespace = (
            None
            if settings.kube_namespace == "*"
            else (settings.kube_namespace or config.namespace)
        )
        kube = await stack.enter_async_context(build_http_client(config))
        catalog = Catalog(PromptRegistry([]), metrics)
        catalog.ready = False
        client = PromptVersionClient(kube, namespace)
        _background(stack, watch_cluster(client, catalog, collections), "cluster watch")
        _log.info("watching PromptVersions in %s", namespace or "all namespaces")
        return catalog
    registry = load_file_registry(settings.prompts_dir, collections, settings.routing_file)
    catalog = Catalog(PromptRegistry([]), metrics)
    catalog.replace(registry)
    if settings.routing_file is not None:
        base = load_file_registry(settings.prompts_dir, collections, None)
        _background(stack, watch_routing_file(settings.routing_file, base, catalog), "routing file")
    return catalog


async def index_corpora(
    qdrant: AsyncQdrantClient, embedder: Embedder, corpora: Mapping[str, Path]
) -> None:
    """Index each start-up folder into its collection, in order; raises on the first failure."""
    for collection, folder in corpora.items():
        # No pruning: passages indexed by `promptctl index` from other folders stay.
        report = await index_documents(
            qdrant, embedder, collection, read_documents(folder), prune=False
        )
        _log.info(
            "indexed %s from %s: %d added, %d updated, %d unchanged, %d removed",
            report.collection,
            folder,
            report.added,
            report.updated,
            report.unchanged,
            report.removed,
        )


def _background(stack: AsyncExitStack, work: Coroutine[Any, Any, None], name: str) -> None:
    """Run `work` until the lifespan ends."""
    task = asyncio.create_task(work, name=name)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Open clients, index the start-up corpora, load the prompts; close everything after."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            httpx.AsyncClient(
                timeout=httpx.Timeout(30.0, connect=5.0),
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
        )
        qdrant = open_qdrant(settings)
        stack.push_async_callback(qdrant.close)
        embedder = build_embedder(settings, http)
        await index_corpora(qdrant, embedder, settings.start_up_corpora())
        collections = {c.name for c in (await qdrant.get_collections()).collections}
        metrics = Metrics()
        catalog = await open_catalog(settings, collections, metrics, stack)
        chat = build_chat_model(settings, http, embedder, metrics)
        answers = AnswerService(
            catalog=catalog,
            retriever=Retriever(qdrant, embedder),
            chat=chat,
            prices=settings.model_prices,
            metrics=metrics,
            request_log=RequestLogger(ContentMode(settings.log_content)),
        )
        idempotency = build_idempotency_store(settings.redis_url)
        stack.push_async_callback(idempotency.close)
        yield Resources(
            settings, http, qdrant, embedder, catalog, chat, answers, metrics, idempotency
        )
