"""Fixtures shared by the service tests: the bundled embedder and an in-memory Qdrant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from qdrant_client import AsyncQdrantClient

from service.retrieval.embeddings import OnnxMiniLMEmbedder

POLICIES_DIR = Path(__file__).resolve().parents[2] / "data" / "policies"


@pytest.fixture(scope="session")
def policies_dir() -> Path:
    """The shipped example corpus, ``data/policies``."""
    return POLICIES_DIR


@pytest.fixture(scope="session")
def minilm() -> OnnxMiniLMEmbedder:
    """The bundled ONNX embedder, loaded once per session (~0.5 s)."""
    embedder = OnnxMiniLMEmbedder()
    embedder.load()
    return embedder


@pytest_asyncio.fixture
async def memory_qdrant() -> AsyncIterator[AsyncQdrantClient]:
    """An empty embedded Qdrant in memory."""
    client = AsyncQdrantClient(location=":memory:")
    yield client
    await client.close()
