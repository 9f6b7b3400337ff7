"""The bundled MiniLM embedder (real model) and the OpenAI-compatible one (MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import numpy as np
import pytest

from service.errors import EmbeddingError
from service.retrieval.embeddings import (
    MINILM_DIMENSION,
    MINILM_MODEL_ID,
    OnnxMiniLMEmbedder,
    OpenAIEmbedder,
    build_embedder,
    fetch_dimension,
    normalise_rows,
    pool_mean,
)
from service.settings import Settings


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


# --- pure helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([[3.0, 4.0]], [[0.6, 0.8]]),
        ([[0.0, 0.0]], [[0.0, 0.0]]),
        ([[2.0, 0.0], [0.0, -5.0]], [[1.0, 0.0], [0.0, -1.0]]),
    ],
    ids=["scales-to-unit", "zero-stays-zero", "each-row-alone"],
)
def test_normalise_rows(rows: list[list[float]], expected: list[list[float]]) -> None:
    got = normalise_rows(np.array(rows, dtype=np.float32))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_pool_mean_ignores_padding() -> None:
    hidden = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]], dtype=np.int64)
    np.testing.assert_allclose(pool_mean(hidden, mask), [[1.0, 0.0]], atol=1e-6)


def test_pool_mean_matches_a_plain_loop_on_a_padded_batch() -> None:
    rng = np.random.default_rng(3)
    hidden = rng.normal(size=(4, 7, 5)).astype(np.float32)
    mask = np.array([[1] * 7, [1] * 3 + [0] * 4, [1] + [0] * 6, [0] * 7], dtype=np.int64)
    expected = []
    for row, keep in zip(hidden, mask, strict=True):
        mean = row[keep == 1].mean(axis=0) if keep.any() else np.zeros(5)
        norm = np.linalg.norm(mean)
        expected.append(mean / norm if norm else mean)
    got = pool_mean(hidden, mask)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)


# --- OnnxMiniLMEmbedder ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_minilm_vectors_are_unit_length_384d(minilm: OnnxMiniLMEmbedder) -> None:
    vectors = await minilm.embed(["Refunds take five days.", "", "x" * 5000])
    assert minilm.dimension == MINILM_DIMENSION == 384
    assert minilm.model_id == MINILM_MODEL_ID
    assert [len(v) for v in vectors] == [384, 384, 384]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.asyncio
async def test_minilm_empty_batch(minilm: OnnxMiniLMEmbedder) -> None:
    assert await minilm.embed([]) == []


@pytest.mark.parametrize(
    ("anchor", "paraphrase", "unrelated"),
    [
        (
            "Can I get my money back for an e-book?",
            "Are digital books refundable?",
            "The train leaves at seven in the morning.",
        ),
        (
            "How long does delivery take?",
            "When will my parcel arrive?",
            "My cat likes to sleep on the sofa.",
        ),
        (
            "Delete my account and personal data.",
            "Please erase everything you store about me.",
            "Add two cups of flour to the bowl.",
        ),
    ],
    ids=["refund", "delivery", "erasure"],
)
@pytest.mark.asyncio
async def test_minilm_paraphrase_beats_unrelated(
    minilm: OnnxMiniLMEmbedder, anchor: str, paraphrase: str, unrelated: str
) -> None:
    a, p, u = await minilm.embed([anchor, paraphrase, unrelated])
    assert cosine(a, p) > cosine(a, u) + 0.2


@pytest.mark.asyncio
async def test_minilm_batch_equals_single(minilm: OnnxMiniLMEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence about shipping costs", "refund " * 40]
    batch = await minilm.embed(texts)
    for text, vector in zip(texts, batch, strict=True):
        (single,) = await minilm.embed([text])
        assert cosine(single, vector) > 0.999


@pytest.mark.asyncio
async def test_minilm_small_batches_keep_order(minilm: OnnxMiniLMEmbedder) -> None:
    texts = [f"sentence number {i} " * (i % 4 + 1) for i in range(7)]
    small = OnnxMiniLMEmbedder(batch_size=2)
    np.testing.assert_allclose(await small.embed(texts), await minilm.embed(texts), atol=1e-4)


# --- OpenAIEmbedder -----------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


def embeddings_response(request: httpx.Request, dimension: int = 3) -> httpx.Response:
    """Vector i is (i+1) * (1, 2, 2) padded; data listed in reverse to test ordering."""
    inputs = json.loads(request.content)["input"]
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": [(i + 1.0) * x for x in [1, 2, 2]][:dimension],
        }
        for i in range(len(inputs))
    ]
    return httpx.Response(200, json={"object": "list", "data": data[::-1]})


def openai_embedder(handler: Handler, **kwargs: object) -> OpenAIEmbedder:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenAIEmbedder(http, "https://llm.example/v1/", "text-embedding-3-small", **kwargs)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_openai_request_and_normalisation() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return embeddings_response(request)

    embedder = openai_embedder(handler, api_key="sk-test")
    vectors = await embedder.embed(["first", ""])
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://llm.example/v1/embeddings"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert json.loads(request.content) == {
        "model": "text-embedding-3-small",
        "input": ["first", " "],
    }
    np.testing.assert_allclose(vectors, [[1 / 3, 2 / 3, 2 / 3]] * 2, atol=1e-6)
    assert embedder.dimension == 3
    assert embedder.model_id == "text-embedding-3-small"


@pytest.mark.asyncio
async def test_openai_without_key_sends_no_auth_header() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers
        return embeddings_response(request)

    assert len(await openai_embedder(handler).embed(["x"])) == 1


@pytest.mark.asyncio
async def test_openai_batches_requests() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sizes.append(len(json.loads(request.content)["input"]))
        return embeddings_response(request)

    vectors = await openai_embedder(handler, batch_size=2).embed(list("abcde"))
    assert sizes == [2, 2, 1]
    assert len(vectors) == 5


@pytest.mark.asyncio
async def test_openai_dimension_is_learned_or_probed() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content)["input"][0])
        return embeddings_response(request)

    embedder = openai_embedder(handler)
    with pytest.raises(EmbeddingError, match="not known"):
        _ = embedder.dimension
    assert await fetch_dimension(embedder) == 3
    assert await fetch_dimension(embedder) == 3
    assert calls == ["dimension probe"]


def _raise(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (lambda r: httpx.Response(401, json={"error": "bad key"}), "EMBEDDING_API_KEY"),
        (lambda r: httpx.Response(403), "HTTP 403"),
        (lambda r: httpx.Response(429, text="slow down"), "HTTP 429: slow down"),
        (lambda r: httpx.Response(502, text="bad gateway"), "HTTP 502"),
        (lambda r: httpx.Response(200, text="not json"), "unexpected embeddings response"),
        (lambda r: httpx.Response(200, json={"data": []}), "1 inputs"),
        (lambda r: httpx.Response(200, json={"data": [{"embedding": []}]}), "unexpected"),
        (lambda r: httpx.Response(200, json={"nope": 1}), "unexpected"),
        (_raise(httpx.ConnectError("refused")), "failed: refused"),
        (_raise(httpx.ReadTimeout("slow")), "timed out"),
    ],
    ids=[
        "401",
        "403",
        "429",
        "502",
        "not-json",
        "too-few-vectors",
        "empty-vector",
        "no-data",
        "connect-error",
        "timeout",
    ],
)
@pytest.mark.asyncio
async def test_openai_errors(handler: Handler, message: str) -> None:
    with pytest.raises(EmbeddingError, match=message):
        await openai_embedder(handler).embed(["x"])


@pytest.mark.asyncio
async def test_openai_dimension_change_is_an_error() -> None:
    dimensions = iter([3, 2])

    def handler(request: httpx.Request) -> httpx.Response:
        return embeddings_response(request, next(dimensions))

    embedder = openai_embedder(handler)
    await embedder.embed(["a"])
    with pytest.raises(EmbeddingError, match="returned 2-d vectors, expected 3"):
        await embedder.embed(["b"])


# --- build_embedder ----------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EMBEDDING_BASE_URL", "EMBEDDING_API_KEY", "MODEL_API_KEY", "EMBEDDING_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("settings", "kind", "auth"),
    [
        ({}, OnnxMiniLMEmbedder, None),
        ({"embedding_base_url": ""}, OnnxMiniLMEmbedder, None),
        ({"embedding_base_url": "https://e.example/v1"}, OpenAIEmbedder, None),
        (
            {
                "embedding_base_url": "https://e.example/v1",
                "model_base_url": "https://e.example/v1",
                "model_api_key": "m",
            },
            OpenAIEmbedder,
            "Bearer m",
        ),
        (
            {
                "embedding_base_url": "https://e.example/v1",
                "model_base_url": "https://other.example/v1",
                "model_api_key": "m",
            },
            OpenAIEmbedder,
            None,
        ),
        (
            {
                "embedding_base_url": "https://e.example/v1",
                "model_api_key": "m",
                "embedding_api_key": "e",
            },
            OpenAIEmbedder,
            "Bearer e",
        ),
    ],
    ids=[
        "default-bundled",
        "empty-url-bundled",
        "url-no-key",
        "model-key-same-host",
        "model-key-never-to-another-host",
        "own-key",
    ],
)
@pytest.mark.asyncio
async def test_build_embedder(settings: dict[str, str], kind: type, auth: str | None) -> None:
    headers: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers.get("authorization"))
        return embeddings_response(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        embedder = build_embedder(Settings(**settings), http)  # type: ignore[arg-type]
        assert isinstance(embedder, kind)
        if isinstance(embedder, OpenAIEmbedder):
            await embedder.embed(["x"])
            assert headers == [auth]
