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
from service.retrieval.embeddings import OnnxMiniLMEmbedder


@pytest.mark.asyncio
async def test_the_load_starts_at_once_on_another_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """It must not wait for the loop's next turn: opening the store blocks the loop thread."""
    embedder = OnnxMiniLMEmbedder()
    started = threading.Event()
    threads: list[int] = []

    def load() -> None:
        threads.append(threading.get_ident())
        started.set()

    monkeypatch.setattr(embedder, "load", load)
    embedder.load_in_background()
    # The loop thread is busy here (as during qdrant-client's import): no await.
    assert started.wait(10), "the load did not start while the loop thread was busy"
    assert threads != [threading.get_ident()]


@pytest.mark.asyncio
async def test_a_failed_background_load_is_reported_by_the_first_embedding(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    embedder = OnnxMiniLMEmbedder(model_path=broken)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        embedder.load_in_background()
        await asyncio.sleep(0.2)  # the load fails on its thread (embed would wait for it)
        with pytest.raises(EmbeddingError, match=r"cannot load the model .*broken\.onnx"):
            await embedder.embed(["a question"])
        gc.collect()  # a future whose exception nobody retrieved logs it when collected
        await asyncio.sleep(0)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
