"""The bundled embedding model starts loading on a thread before the store opens, so the two
overlap at start-up; a failed load is reported by the first embedding, as before."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from pathlib import Path

import pytest

from service.errors import EmbeddingError
from service.resources import preload_model
from service.retrieval.embeddings import OnnxMiniLMEmbedder


class _SlowModel:
    """An embedder whose load says which thread ran it, and when."""

    model_id = "slow"
    dimension = 3

    def __init__(self) -> None:
        self.started = threading.Event()
        self.thread: int | None = None

    def load(self) -> None:
        self.thread = threading.get_ident()
        self.started.set()

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0, 0.0] for _ in texts]


class _Endpoint:
    """An embeddings endpoint: nothing to load."""

    model_id = "remote"
    dimension = 3

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [[0.0, 1.0, 0.0] for _ in texts]


@pytest.mark.asyncio
async def test_the_load_starts_at_once_on_another_thread() -> None:
    """It must not wait for the loop's next turn: opening the store blocks the loop thread."""
    model = _SlowModel()
    preload_model(model)  # type: ignore[arg-type]
    # The loop thread is busy here (as during qdrant-client's import): no await.
    assert model.started.wait(10), "the load did not start while the loop thread was busy"
    assert model.thread is not None
    assert model.thread != threading.get_ident()


@pytest.mark.asyncio
async def test_an_endpoint_has_nothing_to_preload() -> None:
    preload_model(_Endpoint())  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_failed_preload_is_reported_by_the_first_embedding(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    embedder = OnnxMiniLMEmbedder(model_path=broken)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        preload_model(embedder)
        await asyncio.sleep(0.2)  # the preload fails on its thread (embed would wait for it)
        with pytest.raises(EmbeddingError, match=r"cannot load the model .*broken\.onnx"):
            await embedder.embed(["a question"])
        gc.collect()  # a future whose exception nobody retrieved logs it when collected
        await asyncio.sleep(0)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
