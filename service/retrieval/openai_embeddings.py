"""Embeddings from an OpenAI-compatible ``POST {base_url}/embeddings`` endpoint.

Vectors come back L2-normalised, as the bundled model's do
(:mod:`service.retrieval.embeddings` selects one of the two).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx

from service.errors import EmbeddingError
from service.retrieval.vectors import normalise_rows
from service.telemetry.spans import OPENAI_PROVIDER, Tracing, embedding_span

if TYPE_CHECKING:
    from service.retrieval.vectors import FloatArray

__all__ = ["OpenAIEmbedder"]


class OpenAIEmbedder:
    """An OpenAI-compatible ``POST {base_url}/embeddings`` endpoint.

    The caller owns ``http`` (its pool, timeouts and lifetime). The dimension is
    learned from the first response unless given; reading :attr:`dimension`
    before that raises EmbeddingError (:func:`fetch_dimension` probes instead).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        model: str,
        api_key: str | None = None,
        batch_size: int = 128,
        dimension: int | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._http = http
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._batch_size = batch_size
        self._dimension = dimension
        self._tracing = tracing or Tracing()

    @property
    def model_id(self) -> str:
        """The model name sent upstream."""
        return self._model

    @property
    def dimension(self) -> int:
        """Vector length, known after the first call (or when given)."""
        if self._dimension is None:
            raise EmbeddingError(f"the dimension of {self._model} is not known before a first call")
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit vectors for ``texts``, one request per ``batch_size`` texts."""
        vectors: list[list[float]] = []
        with embedding_span(
            self._tracing,
            self._model,
            len(texts),
            provider=OPENAI_PROVIDER,
            server_url=self._url,
            dimension=self._dimension,
        ):
            for start in range(0, len(texts), self._batch_size):
                vectors.extend(await self._embed_batch(texts[start : start + self._batch_size]))
        return vectors

    async def _embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        # OpenAI rejects empty strings; a space embeds to "nothing" just as well.
        body = {"model": self._model, "input": [text or " " for text in texts]}
        try:
            response = await self._http.post(self._url, json=body, headers=self._headers)
        except httpx.TimeoutException as exc:
            raise EmbeddingError(f"embedding request to {self._url} timed out") from exc
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"embedding request to {self._url} failed: {exc}") from exc
        if response.status_code in (401, 403):
            raise EmbeddingError(
                f"{self._url} rejected the credentials (HTTP {response.status_code}); "
                "check EMBEDDING_API_KEY"
            )
        if response.is_error:
            raise EmbeddingError(
                f"{self._url} answered HTTP {response.status_code}: {response.text[:200]}"
            )
        matrix = _parse_embeddings(response, len(texts))
        self._check_dimension(matrix.shape[1])
        return normalise_rows(matrix).tolist()  # type: ignore[no-any-return]

    def _check_dimension(self, dimension: int) -> None:
        if self._dimension is None:
            self._dimension = dimension
        elif dimension != self._dimension:
            raise EmbeddingError(
                f"{self._model} returned {dimension}-d vectors, expected {self._dimension}"
            )


def _parse_embeddings(response: httpx.Response, count: int) -> FloatArray:
    """The ``data[].embedding`` rows of a response, in ``index`` order."""
    import numpy as np  # noqa: PLC0415 - numpy loads with the first vector, not at start-up

    try:
        data = response.json()["data"]
        rows = sorted(data, key=lambda item: int(item.get("index", 0)))
        matrix = np.array([row["embedding"] for row in rows], dtype=np.float32)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EmbeddingError(f"unexpected embeddings response: {exc!r}") from exc
    if matrix.ndim != 2 or matrix.shape[0] != count or matrix.shape[1] == 0:
        raise EmbeddingError(
            f"unexpected embeddings response: {count} inputs, vectors of shape {matrix.shape}"
        )
    return matrix
