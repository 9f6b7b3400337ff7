"""Exact cosine top-k over a numpy matrix of unit vectors (pure: no I/O).

:class:`ExactIndex` holds one collection's points in memory: a ``[n, d]`` float32
matrix of L2-normalised rows, their ids and payloads. A query is one matrix-vector
product (on one BLAS thread in the service) and an ``argpartition``: at 10,000 x 384
about 0.5 ms on a quiet core, 1-2 ms on a busy one,
against the embedded Qdrant local mode's ~10 ms (it scores points in Python-driven
loops). Semantics are the embedded store's for the calls the retriever makes:
cosine similarity of normalised vectors, ``score >= min_score`` kept, best first.
Equal scores are ordered by insertion (row order), so results are deterministic.

Updates replace a point in place (``upsert``) or remove it (``delete``, which moves the
last row into the hole: O(d) per point, no copy of the matrix).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from service.retrieval.vectors import normalise_rows

if TYPE_CHECKING:
    from service.retrieval.vectors import FloatArray

__all__ = ["ExactHit", "ExactIndex", "decide_top_k"]

_GROWTH = 1.5


@dataclass(frozen=True)
class ExactHit:
    """One search result: the point's id, its cosine similarity and its payload."""

    id: str
    score: float
    payload: Mapping[str, Any]


def decide_top_k(scores: FloatArray, k: int, min_score: float) -> npt.NDArray[np.intp]:
    """Row numbers of the ``k`` best ``scores`` that are ``>= min_score``, best first (pure).

    Ties are broken by the lower row number, including at the k-th place.
    """
    n = int(scores.shape[0])
    if k < 1 or n == 0:
        return np.empty(0, dtype=np.intp)
    keep = np.flatnonzero(scores >= min_score)
    if keep.size > k:
        kept = scores[keep]
        part = np.argpartition(-kept, k - 1)[:k]
        kth = kept[part].min()
        above = keep[kept > kth]
        equal = keep[kept == kth][: k - above.size]
        keep = np.concatenate([above, equal])
    order = np.lexsort((keep, -scores[keep]))
    result: npt.NDArray[np.intp] = keep[order].astype(np.intp)
    return result


class ExactIndex:
    """The points of one collection, searchable exactly by cosine similarity."""

    def __init__(self, dimension: int) -> None:
        if dimension < 1:
            raise ValueError("dimension must be at least 1")
        self.dimension = dimension
        self._matrix: FloatArray = np.empty((16, dimension), dtype=np.float32)
        self._ids: list[str] = []
        self._payloads: list[Mapping[str, Any]] = []
        self._rows: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, point_id: object) -> bool:
        return point_id in self._rows

    def payloads(self) -> dict[str, Mapping[str, Any]]:
        """Every point's payload, by id."""
        return dict(zip(self._ids, self._payloads, strict=True))

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]] | FloatArray,
        payloads: Sequence[Mapping[str, Any]],
    ) -> None:
        """Add points, or replace those whose id is already present."""
        if not len(ids) == len(vectors) == len(payloads):
            raise ValueError("ids, vectors and payloads must have the same length")
        if not ids:
            return
        block = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)
        if block.shape[1] != self.dimension:
            raise ValueError(f"expected {self.dimension}-d vectors, got {block.shape[1]}-d")
        unit = normalise_rows(block)
        for point_id, row, payload in zip(ids, unit, payloads, strict=True):
            self._put(str(point_id), row, payload)

    def delete(self, ids: Iterable[str]) -> None:
        """Remove the points with these ids (absent ids are ignored)."""
        for point_id in ids:
            row = self._rows.pop(str(point_id), None)
            if row is None:
                continue
            last = len(self._ids) - 1
            if row != last:
                self._matrix[row] = self._matrix[last]
                self._ids[row] = self._ids[last]
                self._payloads[row] = self._payloads[last]
                self._rows[self._ids[row]] = row
            self._ids.pop()
            self._payloads.pop()

    def search(self, query: Sequence[float], k: int, min_score: float) -> list[ExactHit]:
        """Up to ``k`` points scoring at least ``min_score`` against ``query``, best first."""
        n = len(self._ids)
        if n == 0 or k < 1:
            return []
        vector = normalise_rows(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
        if vector.shape[0] != self.dimension:
            raise ValueError(f"expected a {self.dimension}-d query, got {vector.shape[0]}-d")
        # ``@`` runs on OpenBLAS, which `python -m service` keeps to one thread: its threads
        # spin on every core, ~10x slower on a busy machine (service/blas_threads.py).
        scores: FloatArray = self._matrix[:n] @ vector
        return [
            ExactHit(self._ids[row], float(scores[row]), self._payloads[row])
            for row in decide_top_k(scores, k, min_score)
        ]

    def _put(self, point_id: str, row_vector: FloatArray, payload: Mapping[str, Any]) -> None:
        row = self._rows.get(point_id)
        if row is None:
            row = len(self._ids)
            if row == self._matrix.shape[0]:
                grown = np.empty((int(row * _GROWTH) + 16, self.dimension), dtype=np.float32)
                grown[:row] = self._matrix[:row]
                self._matrix = grown
            self._ids.append(point_id)
            self._payloads.append(payload)
            self._rows[point_id] = row
        else:
            self._payloads[row] = payload
        self._matrix[row] = row_vector
