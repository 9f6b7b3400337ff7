"""One BLAS thread for numpy in the service process (``OPENBLAS_NUM_THREADS``).

The exact search (:mod:`service.retrieval.exact`) scores a question with one
matrix-vector product. numpy's OpenBLAS splits it over a thread per core, and those
threads spin: 16-35 ms at 10,000 x 384 while other processes hold the cores, against
~1 ms on one thread. On one thread ``@`` is also twice as fast as the ``einsum`` the
search used to avoid BLAS (0.47 against 0.93 ms on a quiet core;
docs/benchmarks-performance.md, "Exact search on one BLAS thread").

OpenBLAS reads the variable once, when numpy loads, so ``python -m service`` sets it
before anything imports numpy. A value the operator set wins. Nothing else in the
service uses numpy's BLAS (the embedding model runs on ONNX Runtime's own threads).
"""

from __future__ import annotations

from collections.abc import MutableMapping

__all__ = ["BLAS_THREADS_VARIABLE", "apply_one_blas_thread"]

BLAS_THREADS_VARIABLE = "OPENBLAS_NUM_THREADS"


def apply_one_blas_thread(environ: MutableMapping[str, str]) -> str:
    """Ask numpy's OpenBLAS for one thread unless ``environ`` already says; the value kept."""
    return environ.setdefault(BLAS_THREADS_VARIABLE, "1")
