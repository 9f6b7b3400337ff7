"""Vector arithmetic for embeddings (pure): unit rows, masked mean pooling."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    #: For annotations only (import it under ``TYPE_CHECKING``): numpy is imported by the
    #: functions here when they first run, so importing this module costs nothing.
    FloatArray: TypeAlias = npt.NDArray[np.float32]

__all__ = ["FloatArray", "normalise_rows", "pool_mean"]


def normalise_rows(vectors: FloatArray) -> FloatArray:
    """Each row scaled to unit L2 norm; all-zero rows stay zero (pure)."""
    import numpy as np  # noqa: PLC0415 - numpy loads with the first vector, not at start-up

    norms: FloatArray = np.linalg.norm(vectors, axis=1, keepdims=True)
    scaled: FloatArray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return scaled


def pool_mean(hidden: FloatArray, attention_mask: npt.NDArray[np.int64]) -> FloatArray:
    """Mean of the token vectors under the attention mask, L2-normalised (pure).

    ``hidden`` is ``[batch, seq, dim]``, ``attention_mask`` is ``[batch, seq]``. One
    ``einsum`` instead of ``(hidden * mask).sum``: no masked copy of ``hidden`` (10 MB for
    an indexing batch of 32 x 200 tokens), 7 ms → 1 ms per such batch; ~40 µs either way
    for one question.
    """
    import numpy as np  # noqa: PLC0415 - numpy loads with the first vector, not at start-up

    mask = attention_mask.astype(np.float32)
    summed: FloatArray = np.einsum("bsd,bs->bd", hidden.astype(np.float32, copy=False), mask)
    summed /= np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
    return normalise_rows(summed)
