"""Retrieval (embed + top-3) in the embedded store, old path and new path in one run.

In process, against the real bundled MiniLM model and the real embedded Qdrant
(``:memory:``): N random unit vectors (the search cost does not depend on the texts) with
the payloads indexing writes, and distinct real questions embedded by the model.

- *store search*: the embedded Qdrant local mode's own ``query_points`` (the old path);
- *exact search*: :class:`service.retrieval.mirror.MirroredQdrant`'s in-memory matrix;
- *embed, ORT defaults*: the model with ONNX Runtime's default session options (one
  spinning thread per core), *embed, 1 thread*: the tuned options with one intra-op thread
  (the setting before issue 15's embedding work), *embed, tuned*: :func:`build_session_options`
  as the service uses it (2 sleeping threads on 2 cores);
- *concurrent*: 1 thread and tuned under ``CONCURRENT`` simultaneous questions (as
  concurrent requests run them, one worker thread each): questions per second and process
  CPU per question, so that a lone-query win that costs throughput shows;
- *retrieve*: :class:`service.retrieval.search.Retriever` end to end (embed + top-3 +
  screening) with the question cache off (distinct questions), and a repeated question
  (cache hit). *old path*: default options + store search, per question.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from qdrant_client import AsyncQdrantClient, models

from service.retrieval.embeddings import MINILM_DIMENSION, OnnxMiniLMEmbedder
from service.retrieval.exact import ExactIndex
from service.retrieval.mirror import MirroredQdrant
from service.retrieval.search import Retriever

__all__ = ["RetrievalRow", "measure_retrieval", "render_retrieval"]

COLLECTION = "bench"
#: Above this, only the in-memory index is filled (the store's own search is not measured).
STORE_LIMIT = 20_000
_NAN = float("nan")
#: Simultaneous questions in the concurrent embedding measurement.
CONCURRENT = 4
_TOPICS = ["refund", "shipping", "warranty", "invoice", "password", "delivery", "return", "tax"]


@dataclass(frozen=True)
class RetrievalRow:
    """Medians (ms) at one collection size."""

    passages: int
    store_search_ms: float
    exact_search_ms: float
    embed_default_ms: float
    embed_tuned_ms: float
    old_path_ms: float
    retrieve_ms: float
    retrieve_cached_ms: float
    mirror_load_s: float
    queries: int
    embed_one_thread_ms: float = _NAN
    #: Setting name -> (questions per second, CPU ms per question) at ``CONCURRENT``.
    concurrent: tuple[tuple[str, float, float], ...] = ()


class _DefaultOptionsEmbedder(OnnxMiniLMEmbedder):
    """The bundled model with ONNX Runtime's default session options (the old setting)."""

    def _load_session(self) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 0
        options.log_severity_level = 3
        return ort.InferenceSession(
            str(self._model_path), options, providers=["CPUExecutionProvider"]
        )


def build_questions(count: int) -> list[str]:
    """``count`` distinct, realistic questions (pure)."""
    return [
        f"How long does a {_TOPICS[i % len(_TOPICS)]} take for order {1000 + i} paid by card?"
        for i in range(count)
    ]


def _payload(n: int) -> dict[str, Any]:
    return {
        "passage_id": f"doc{n}.md#1",
        "source": f"doc{n}.md",
        "title": "Policy",
        "text": f"Passage {n} about {_TOPICS[n % len(_TOPICS)]}.",
    }


async def _fill(client: MirroredQdrant, passages: int, seed: int) -> bool:
    """Fill the collection; False when it was too large for the embedded store and only
    the in-memory index was filled (the local mode takes minutes per 100,000 upserts)."""
    await client.create_collection(
        COLLECTION,
        vectors_config=models.VectorParams(size=MINILM_DIMENSION, distance=models.Distance.COSINE),
    )
    rng = np.random.default_rng(seed)
    if passages > STORE_LIMIT:
        index = ExactIndex(MINILM_DIMENSION)
        index.upsert(
            [str(n) for n in range(passages)],
            rng.normal(size=(passages, MINILM_DIMENSION)).astype(np.float32),
            [_payload(n) for n in range(passages)],
        )
        client._mirrors[COLLECTION] = index
        return False
    for start in range(0, passages, 2000):
        n = min(2000, passages - start)
        vectors = rng.normal(size=(n, MINILM_DIMENSION)).astype(np.float32)
        batch = [
            models.PointStruct(
                id=start + i, vector=vectors[i].tolist(), payload=_payload(start + i)
            )
            for i in range(n)
        ]
        await AsyncQdrantClient.upsert(client, COLLECTION, points=batch)
    return True


async def _median_ms(calls: Sequence[Callable[[], Awaitable[object]]]) -> float:
    samples = []
    if not calls:
        return _NAN
    for call in calls:
        t0 = time.perf_counter_ns()
        await call()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1e6


async def _interleaved_ms(
    series: dict[str, list[Callable[[], Awaitable[object]]]],
) -> dict[str, float]:
    """Median ms per series, the series' i-th calls run back to back (order flipped each
    time) so that the machine's drift hits them alike."""
    samples: dict[str, list[int]] = {name: [] for name in series}
    names = list(series)
    for i in range(min(len(calls) for calls in series.values())):
        for name in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter_ns()
            await series[name][i]()
            samples[name].append(time.perf_counter_ns() - t0)
    return {name: statistics.median(v) / 1e6 if v else _NAN for name, v in samples.items()}


async def _concurrent(
    embedders: dict[str, OnnxMiniLMEmbedder], questions: Sequence[str], rounds: int = 2
) -> tuple[tuple[str, float, float], ...]:
    """Questions/s and CPU ms per question with ``CONCURRENT`` in flight, per setting
    (settings alternated round by round; medians over the rounds)."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in embedders}
    for r in range(rounds):
        names = list(embedders) if r % 2 == 0 else list(embedders)[::-1]
        for name in names:
            embedder = embedders[name]
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for start in range(0, len(questions), CONCURRENT):
                batch = questions[start : start + CONCURRENT]
                await asyncio.gather(*(embedder.embed([q]) for q in batch))
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            samples[name].append((len(questions) / wall, cpu / len(questions) * 1000))
    med = statistics.median
    return tuple((n, med(q for q, _ in v), med(c for _, c in v)) for n, v in samples.items())


async def measure_retrieval(passages: int, queries: int = 40, seed: int = 15) -> RetrievalRow:
    """Both paths at one collection size (the store path on fewer queries above 20,000)."""
    client = MirroredQdrant(location=":memory:")
    try:
        in_store = await _fill(client, passages, seed)
        tuned, default = OnnxMiniLMEmbedder(), _DefaultOptionsEmbedder()
        one = OnnxMiniLMEmbedder(threads=1)
        questions = build_questions(queries)
        for embedder in (tuned, default, one):
            embedder.load()
            await embedder.embed(questions[:2])  # first runs allocate
        vectors = await tuned.embed(questions)
        t0 = time.perf_counter()
        await client.search_exact(COLLECTION, vectors[0], 3, -1.0)  # loads the mirror
        load_s = time.perf_counter() - t0
        slow = vectors if in_store else []

        def store(v: list[float]) -> Callable[[], Awaitable[object]]:
            return lambda: client.query_points(COLLECTION, query=v, limit=3, with_payload=True)

        def exact(v: list[float]) -> Callable[[], Awaitable[object]]:
            return lambda: client.search_exact(COLLECTION, v, 3, -1.0)

        def embed(e: OnnxMiniLMEmbedder, q: str) -> Callable[[], Awaitable[object]]:
            return lambda: e.embed([q])

        async def old_path(q: str) -> None:
            (v,) = await default.embed([q])
            await client.query_points(COLLECTION, query=v, limit=3, with_payload=True)

        def old(q: str) -> Callable[[], Awaitable[object]]:
            return lambda: old_path(q)

        def retrieve(r: Retriever, q: str) -> Callable[[], Awaitable[object]]:
            return lambda: r.retrieve(COLLECTION, q, 3, -1.0)

        uncached = Retriever(client, tuned, query_cache=0)
        cached = Retriever(client, tuned)
        await cached.retrieve(COLLECTION, questions[0], 3, -1.0)
        # The two sleeping-thread settings alternate; ORT's defaults run alone afterwards:
        # their spinning threads go on burning CPU after each run and would slow the next.
        embeds = await _interleaved_ms(
            {name: [embed(e, q) for q in questions] for name, e in (("one", one), ("tuned", tuned))}
        )
        concurrent = await _concurrent({"1 thread": one, "tuned": tuned}, questions)
        embeds["default"] = await _median_ms([embed(default, q) for q in questions])
        return RetrievalRow(
            passages=passages,
            store_search_ms=await _median_ms([store(v) for v in slow]),
            exact_search_ms=await _median_ms([exact(v) for v in vectors]),
            embed_default_ms=embeds["default"],
            embed_tuned_ms=embeds["tuned"],
            embed_one_thread_ms=embeds["one"],
            concurrent=concurrent,
            old_path_ms=await _median_ms([old(q) for q in questions[: len(slow)]]),
            retrieve_ms=await _median_ms([retrieve(uncached, q) for q in questions]),
            retrieve_cached_ms=await _median_ms([retrieve(cached, questions[0])] * len(questions)),
            mirror_load_s=load_s,
            queries=queries,
        )
    finally:
        await client.close()


def _ms(value: float) -> str:
    return "not measured" if math.isnan(value) else f"{value:.2f} ms"


def _ratio(old: float, new: float) -> str:
    return f"{old / new:.1f}x" if new > 0 and not math.isnan(old) else "n/a"


def render_retrieval(rows: Sequence[RetrievalRow]) -> list[str]:
    """The report's retrieval section (pure)."""
    lines = [
        "### Retrieval: embed + top-3 in the embedded store (in process)",
        "",
        "Random unit vectors (384-d) with the payloads indexing writes, in the embedded Qdrant",
        "(`:memory:`); distinct real questions embedded by the bundled MiniLM model. Medians",
        "over the questions. Above 20,000 passages only the in-memory index is filled (the",
        "embedded store takes minutes per 100,000 upserts and warns above 20,000): the store's",
        "own search and the old path are not measured there (FACTS.md: ~100 ms at 100,000).",
        "*old path*: ONNX Runtime's default session options + the store's own search;",
        "*retrieve*: `Retriever.retrieve` as the service runs it (tuned options, exact",
        "in-memory search, screening), question cache off; *cached*: the same question again.",
        "*embed*: one question at a time; 1 thread and tuned alternated question by question,",
        "ORT defaults measured after them (its spinning threads would slow the next run);",
        "*1 thread*: the tuned options with one intra-op thread (the setting before the",
        "embedding work of issue 15); *tuned*: `build_session_options` as the service uses it.",
        "",
        "| passages | store search | exact search | search ratio | embed, ORT defaults | "
        "embed, 1 thread | embed, tuned | old path | retrieve | old/new | retrieve, cached | "
        "mirror load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.passages:,} | {_ms(r.store_search_ms)} | {r.exact_search_ms:.3f} ms | "
            f"{_ratio(r.store_search_ms, r.exact_search_ms)} | {r.embed_default_ms:.2f} ms | "
            f"{_ms(r.embed_one_thread_ms)} | "
            f"{r.embed_tuned_ms:.2f} ms | {_ms(r.old_path_ms)} | {r.retrieve_ms:.2f} ms | "
            f"{_ratio(r.old_path_ms, r.retrieve_ms)} | {r.retrieve_cached_ms:.3f} ms | "
            f"{r.mirror_load_s:.2f} s |"
        )
    return [*lines, "", *_render_concurrent(rows)]


def _render_concurrent(rows: Sequence[RetrievalRow]) -> list[str]:
    """The concurrent-embedding table of the first row that has one (pure)."""
    measured = next((r for r in rows if r.concurrent), None)
    if measured is None:
        return []
    lines = [
        f"Query embedding under load: {CONCURRENT} questions in flight at a time (each in its "
        "own worker thread, as concurrent requests run them), the settings alternated "
        f"round by round ({measured.passages:,}-passage run):",
        "",
        "| setting | questions/s | CPU per question |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {name} | {qps:.1f} | {cpu:.2f} ms |" for name, qps, cpu in measured.concurrent]
    return [*lines, ""]
