"""ExactIndex and decide_top_k (pure): exact against a brute-force reference, ties, edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.retrieval.exact import ExactIndex, decide_top_k

DIM = 4

# Small integer components: many exact ties, zero vectors and opposite directions.
component = st.integers(min_value=-2, max_value=2).map(float)
vector = st.lists(component, min_size=DIM, max_size=DIM)


def reference(
    rows: list[tuple[str, list[float]]], query: list[float], min_score: float
) -> list[tuple[str, float]]:
    """Brute force in float64: the cosine of each row, kept if >= min_score, best first,
    ties by row order."""

    def unit(v: list[float]) -> list[float]:
        norm = math.sqrt(sum(x * x for x in v))
        return [x / max(norm, 1e-12) for x in v]

    q = unit(query)
    scored = [
        (i, pid, sum(a * b for a, b in zip(unit(v), q, strict=True)))
        for i, (pid, v) in enumerate(rows)
    ]
    kept = [s for s in scored if s[2] >= min_score]
    kept.sort(key=lambda s: (-round(s[2], 5), s[0]))
    return [(pid, score) for _, pid, score in kept]


@settings(max_examples=300, deadline=None)
@given(
    vectors=st.lists(vector, max_size=30),
    query=vector.filter(any),
    k=st.integers(min_value=0, max_value=40),
    # No achievable cosine of these small integer vectors lies within float32 rounding
    # of these thresholds, so float32 and float64 agree on which points pass.
    min_score=st.sampled_from([-2.0, -0.777, -0.123, 0.123, 0.555, 0.777, 2.0]),
)
def test_search_matches_brute_force(
    vectors: list[list[float]], query: list[float], k: int, min_score: float
) -> None:
    rows = [(f"p{i}", v) for i, v in enumerate(vectors)]
    index = ExactIndex(DIM)
    index.upsert([r[0] for r in rows], [r[1] for r in rows], [{"n": i} for i in range(len(rows))])
    hits = index.search(query, k, min_score)
    everything = reference(rows, query, min_score)
    expected = everything[:k]
    assert len(hits) == len(expected)
    assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-5)
    for hit in hits:
        assert hit.payload == {"n": int(hit.id[1:])}
    assert len({h.id for h in hits}) == len(hits)
    # Scores equal up to float rounding may come in either order: outside those ties the
    # ids are the reference's; a tied id is one whose reference score is within 1e-5.
    reference_score = dict(everything)
    for hit in hits:
        assert hit.id in reference_score
        assert abs(reference_score[hit.id] - hit.score) < 1e-5
    if expected:
        kth = expected[-1][1]
        sure = {pid for pid, s in expected if s > kth + 1e-5}
        assert sure <= {h.id for h in hits}


def test_ties_are_ordered_by_row_even_at_the_kth_place() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.9, 0.5, 0.1], dtype=np.float32)
    assert decide_top_k(scores, 1, -1.0).tolist() == [1]
    assert decide_top_k(scores, 2, -1.0).tolist() == [1, 3]
    assert decide_top_k(scores, 3, -1.0).tolist() == [1, 3, 0]
    assert decide_top_k(scores, 4, -1.0).tolist() == [1, 3, 0, 2]
    assert decide_top_k(scores, 10, -1.0).tolist() == [1, 3, 0, 2, 4, 5]
    assert decide_top_k(scores, 10, 0.5).tolist() == [1, 3, 0, 2, 4]
    assert decide_top_k(scores, 0, -1.0).tolist() == []


def test_empty_index_and_k_larger_than_n() -> None:
    index = ExactIndex(DIM)
    assert index.search([1.0, 0, 0, 0], 3, -1.0) == []
    index.upsert(["a", "b"], [[1.0, 0, 0, 0], [0, 1.0, 0, 0]], [{}, {}])
    assert [h.id for h in index.search([1.0, 0.1, 0, 0], 50, -1.0)] == ["a", "b"]
    assert index.search([1.0, 0, 0, 0], 0, -1.0) == []


def test_upsert_replaces_and_delete_removes() -> None:
    index = ExactIndex(DIM)
    index.upsert(["a", "b", "c"], [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]], [{}, {}, {}])
    index.upsert(["a"], [[0, 0, 0, 5.0]], [{"v": 2}])
    assert len(index) == 3
    (best,) = index.search([0, 0, 0, 1.0], 1, -1.0)
    assert (best.id, dict(best.payload)) == ("a", {"v": 2})
    assert best.score == pytest.approx(1.0)
    index.delete(["a", "missing"])
    assert "a" not in index
    assert len(index) == 2
    assert [h.id for h in index.search([0, 0, 1.0, 0], 5, 0.5)] == ["c"]
    index.delete(["b", "c"])
    assert index.search([0, 0, 1.0, 0], 5, -1.0) == []


def test_grows_past_its_initial_capacity() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(1000, DIM)).astype(np.float32)
    index = ExactIndex(DIM)
    for start in range(0, 1000, 100):
        ids = [str(i) for i in range(start, start + 100)]
        index.upsert(ids, vectors[start : start + 100], [{} for _ in ids])
    (hit,) = index.search(vectors[637].tolist(), 1, -1.0)
    assert hit.id == "637"
    assert hit.score == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        (["a"], [[1.0, 0, 0]], "expected 4-d vectors"),
        (["a", "b"], [[1.0, 0, 0, 0]], "same length"),
    ],
    ids=["wrong-dimension", "length-mismatch"],
)
def test_bad_points_are_refused(ids: list[str], vectors: list[list[float]], message: str) -> None:
    index = ExactIndex(DIM)
    with pytest.raises(ValueError, match=message):
        index.upsert(ids, vectors, [{} for _ in ids])
    with pytest.raises(ValueError, match="dimension"):
        ExactIndex(0)
