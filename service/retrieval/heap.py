"""Hand freed heap memory back to the operating system (glibc's ``malloc_trim``).

Loading the ONNX model and indexing the start-up corpora allocate and free large
temporary buffers (graph optimisation, batches of long passages). glibc keeps the freed
pages in its arenas, so the process's RSS stays at the peak: ~60 MB more after the model
loads than once trimmed (docs/benchmarks-performance.md). :func:`trim_heap` returns them;
it is a no-op where glibc is absent (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

__all__ = ["trim_heap"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def trim_heap() -> bool:
    """Release free heap pages to the OS; False where that is not possible."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
