"""The shared clients and state the app's lifespan opens, and how they are opened."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from service.answering.judge import OnlineJudge
from service.answering.pipeline import AnswerService
from service.catalog.catalog import Catalog
from service.catalog.registry import PromptRegistry
from service.catalog.sources import load_file_registry, watch_cluster, watch_routing_file
from service.http.access import AccessControl
from service.http.auth import KeyFile, watch_key_file
from service.http.feedback import Feedback
from service.http.idempotency import Idempotency
from service.http.quota import build_quota
from service.judge_setup import build_judge
from service.llm.chat import AnswerModel
from service.llm.deferred_transport import DeferredTransport, build_transport
from service.llm.extractive import ExtractiveAnswerer
from service.llm.openai_chat import OpenAIChatModel
from service.llm.resilience.streaming import ResilientStreamingModel
from service.retrieval.chunking import read_documents
from service.retrieval.embeddings import Embedder, OnnxMiniLMEmbedder, build_embedder
from service.retrieval.heap import trim_heap
from service.retrieval.indexing import index_documents
from service.retrieval.search import Retriever
from service.retrieval.store import VectorStore
from service.retrieval.vector_cache import CachedEmbedder, cache_path, read_vectors
from service.retrieval.vectorstore import open_store
from service.settings import Settings
from service.shadow_setup import open_shadow
from service.shared_state import build_feedback, build_idempotency, open_redis
from service.telemetry.metrics import Metrics
from service.telemetry.request_log import ContentMode, RequestLogger
from service.telemetry.resilience_observer import MetricsObserver
from service.telemetry.spans import Tracing
from service.tools.setup import build_tool_runner

if TYPE_CHECKING:
    import redis.asyncio
    from qdrant_client import AsyncQdrantClient

    from service.llm.transport import AiohttpTransport

__all__ = ["Resources", "index_corpora", "open_resources"]

_log = logging.getLogger(__name__)


@dataclass
class Resources:
    """Everything handlers share; owned by the app's lifespan."""

    settings: Settings
    http: httpx.AsyncClient
    #: The vector store (QDRANT_URL, QDRANT_PATH, or in memory).
    store: VectorStore
    embedder: Embedder
    catalog: Catalog
    chat: AnswerModel
    answers: AnswerService
    metrics: Metrics
    idempotency: Idempotency
    access: AccessControl
    #: Request ids remembered for POST /v1/feedback, and the ratings.
    feedback: Feedback
    #: Shared by idempotency, quotas and feedback; None without REDIS_URL.
    redis: redis.asyncio.Redis | None = None
    #: The tracing every component records spans with; switched on by the app's lifespan.
    tracing: Tracing = field(default_factory=Tracing)
    #: The sampled online judge; None without MODEL_BASE_URL.
    judge: OnlineJudge | None = None


def build_chat_model(
    settings: Settings,
    http: httpx.AsyncClient,
    embedder: Embedder,
    metrics: Metrics,
    tracing: Tracing | None = None,
    direct: AiohttpTransport | None = None,
) -> AnswerModel:
    """The configured model: an OpenAI-compatible server behind the resilience layer, or the
    embedded extractive answerer. `direct`: `http`'s transport, for calls without httpx."""
    if settings.model_base_url is None:
        return ExtractiveAnswerer(embedder)
    key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    upstream = OpenAIChatModel(
        http,
        settings.model_base_url,
        key,
        tracing=tracing,
        response_format_mode=settings.model_response_format,
        direct=direct,
    )
    return ResilientStreamingModel(upstream, settings.resilience, observer=MetricsObserver(metrics))


async def open_catalog(
    settings: Settings, collections: set[str], metrics: Metrics, stack: AsyncExitStack
) -> Catalog:
    """The served PromptVersions, kept current by a background task where they can change."""
    if settings.prompt_source == "cluster":
        from api.client import PromptVersionClient, open_session  # noqa: PLC0415 - import cost

        kube = await stack.enter_async_context(await open_session())
        namespace = (
            None if settings.kube_namespace == "*" else (settings.kube_namespace or kube.namespace)
        )
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
    store: VectorStore | AsyncQdrantClient, embedder: Embedder, corpora: Mapping[str, Path]
) -> None:
    """Index each start-up folder into its collection, in order; raises on the first failure."""
    for collection, folder in corpora.items():
        # Vectors built ahead for this folder, if any: checked by content hash and model.
        cache = cache_path(folder, embedder.model_id)
        cached = CachedEmbedder(embedder, read_vectors(cache, embedder.model_id))
        # No pruning: passages indexed by `promptctl index` from other folders stay.
        report = await index_documents(
            store, cached, collection, read_documents(folder), prune=False
        )
        if cached.hits:
            _log.info("%s: %d passages' vectors taken from %s", collection, cached.hits, cache)
        _log.info(
            "indexed %s from %s: %d added, %d updated, %d unchanged, %d removed",
            report.collection,
            folder,
            report.added,
            report.updated,
            report.unchanged,
            report.removed,
        )
        for source, flags in sorted(report.screened.items()):
            _log.warning(
                "corpus file %s: %d instruction-like sentences screened out (%s); "
                "run `promptctl index` on the folder to list them",
                source,
                len(flags),
                ", ".join(sorted({flag.rule for flag in flags})),
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
        # httpx's API over aiohttp's pool (service/llm/transport.py): a fraction of the CPU
        # per upstream call, and no O(connections) pool bookkeeping under concurrency.
        # Every pooled connection is kept alive: closing those above a smaller cap would
        # reconnect on most requests at high concurrency.
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        # aiohttp is imported now only if the answer path calls an upstream.
        transport = build_transport(
            bool(settings.model_base_url or settings.embedding_base_url), limits
        )
        http = await stack.enter_async_context(
            httpx.AsyncClient(
                timeout=httpx.Timeout(30.0, connect=5.0), limits=limits, transport=transport
            )
        )
        tracing = Tracing()
        embedder = build_embedder(settings, http, tracing)
        corpora = settings.start_up_corpora()
        if corpora and isinstance(embedder, OnnxMiniLMEmbedder):
            embedder.load_in_background()  # start-up indexing needs it; the store opens meanwhile
        store = open_store(settings)
        stack.push_async_callback(store.close)
        await index_corpora(store, embedder, corpora)
        trim_heap()  # indexing's batch buffers, freed but kept by the allocator
        collections = await store.collection_names()
        metrics = Metrics(tenant_labels=settings.tenant_metrics)
        catalog = await open_catalog(settings, collections, metrics, stack)
        # The chat call goes to the aiohttp pool directly (no httpx models) when it was opened.
        direct = None if isinstance(transport, DeferredTransport) else transport
        chat = build_chat_model(settings, http, embedder, metrics, tracing, direct=direct)
        judge = build_judge(settings, http, chat, metrics, tracing)
        if judge is not None:
            judge.start()
            stack.push_async_callback(judge.stop)  # before the HTTP pool closes
        answers = AnswerService(
            catalog=catalog,
            retriever=Retriever(store, embedder, tracing, settings.query_embedding_cache),
            chat=chat,
            prices=settings.model_prices,
            metrics=metrics,
            request_log=RequestLogger(ContentMode(settings.log_content)),
            max_deadline_seconds=settings.resilience.max_deadline,
            tracing=tracing,
            judge=judge,
            tools=await build_tool_runner(settings, metrics, tracing, stack),
        )
        open_shadow(settings, answers, embedder, stack)  # stopped before the HTTP pool closes
        client = open_redis(settings.redis_url)
        idempotency = build_idempotency(settings, client, metrics)
        stack.push_async_callback(idempotency.close)  # the Redis store's closes the client
        feedback = build_feedback(settings, client, metrics)
        stack.push_async_callback(feedback.close)  # runs first: before the client is closed
        yield Resources(
            settings,
            http,
            store,
            embedder,
            catalog,
            chat,
            answers,
            metrics,
            idempotency,
            open_access(settings, client, metrics, stack),
            feedback,
            client,
            tracing,
            judge,
        )


def open_access(
    settings: Settings,
    client: redis.asyncio.Redis | None,
    metrics: Metrics,
    stack: AsyncExitStack,
) -> AccessControl:
    """Authentication and quotas; API_KEYS_FILE is read now (a broken file stops start-up)
    and re-read in the background when it changes."""
    keys: KeyFile | None = None
    if settings.auth_mode == "api-key":
        assert settings.api_keys_file is not None  # Settings requires it with api-key
        keys = KeyFile(settings.api_keys_file)
        _log.info("API keys loaded from %s: %d keys", settings.api_keys_file, len(keys.ring))
        _background(stack, watch_key_file(keys, settings.api_keys_reload_seconds), "API keys")
    return AccessControl(
        mode=settings.auth_mode,
        keys=keys,
        quota=build_quota(client),
        tenant_rpm=settings.tenant_rpm,
        metrics=metrics,
    )
