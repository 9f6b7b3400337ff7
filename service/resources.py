"""The shared clients and state the app's lifespan opens, and how they are opened."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx
from qdrant_client import AsyncQdrantClient

from api.v1alpha1.manifests import load_manifests
from service.answering import AnswerService
from service.chat import ChatModel
from service.chunking import read_documents
from service.embeddings import Embedder, build_embedder
from service.extractive import ExtractiveAnswerer
from service.indexing import index_documents
from service.metrics import Metrics
from service.openai_chat import OpenAIChatModel
from service.registry import PromptRegistry
from service.retrieval import Retriever
from service.settings import Settings
from service.vectorstore import open_qdrant

__all__ = ["Resources", "open_resources"]

_log = logging.getLogger(__name__)


@dataclass
class Resources:
    """Everything handlers share; owned by the app's lifespan."""

    settings: Settings
    http: httpx.AsyncClient
    qdrant: AsyncQdrantClient
    embedder: Embedder
    registry: PromptRegistry
    chat: ChatModel
    answers: AnswerService
    metrics: Metrics


def build_chat_model(settings: Settings, http: httpx.AsyncClient, embedder: Embedder) -> ChatModel:
    """The configured model: an OpenAI-compatible server, or the embedded extractive answerer."""
    if settings.model_base_url is None:
        return ExtractiveAnswerer(embedder)
    key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    return OpenAIChatModel(http, settings.model_base_url, key)


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Open clients, index the start-up corpus, load the prompts; close everything after."""
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
        if settings.corpus_dir is not None:
            # No pruning: passages indexed by `promptctl index` from other folders stay.
            report = await index_documents(
                qdrant,
                embedder,
                settings.corpus_collection,
                read_documents(settings.corpus_dir),
                prune=False,
            )
            _log.info(
                "indexed %s: %d added, %d unchanged, %d removed",
                report.collection,
                report.added,
                report.unchanged,
                report.removed,
            )
        collections = {c.name for c in (await qdrant.get_collections()).collections}
        registry = PromptRegistry.from_resources(load_manifests(settings.prompts_dir), collections)
        for served in registry.versions():
            _log.info(
                "loaded %s %s: %s %d%%", served.prompt, served.version, served.phase, served.weight
            )
        chat = build_chat_model(settings, http, embedder)
        answers = AnswerService(
            registry=registry,
            retriever=Retriever(qdrant, embedder),
            chat=chat,
            prices=settings.model_prices,
        )
        yield Resources(settings, http, qdrant, embedder, registry, chat, answers, Metrics())
