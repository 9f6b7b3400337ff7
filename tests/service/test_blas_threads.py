"""``python -m service`` runs numpy's BLAS on one thread unless the operator says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service.blas_threads import BLAS_THREADS_VARIABLE, apply_one_blas_thread

#: Imports what ``python -m service`` imports first, then reports the variable and whether
#: numpy was loaded before it (OpenBLAS reads it once, when numpy loads).
PROBE = (
    "import os, sys, service.__main__; "
    "print(os.environ.get('OPENBLAS_NUM_THREADS'), 'numpy' in sys.modules)"
)


def _run(probe: str, environ: dict[str, str]) -> str:
    """`probe` in a fresh interpreter with exactly `environ`; its standard output."""
    out = subprocess.run(
        [sys.executable, "-c", probe],
        check=False,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_one_thread_unless_already_set() -> None:
    environ: dict[str, str] = {}
    assert apply_one_blas_thread(environ) == "1"
    assert environ == {BLAS_THREADS_VARIABLE: "1"}
    chosen = {BLAS_THREADS_VARIABLE: "4"}
    assert apply_one_blas_thread(chosen) == "4"
    assert chosen == {BLAS_THREADS_VARIABLE: "4"}


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("3", "3")])
def test_the_service_entry_point_sets_it_before_numpy_loads(
    given: str | None, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {BLAS_THREADS_VARIABLE, "PYTHONPATH"}}
    if given is not None:
        env[BLAS_THREADS_VARIABLE] = given
    assert _run(PROBE, env).split() == [expected, "False"]


def test_numpy_honours_it() -> None:
    """The variable really reaches numpy's OpenBLAS: a large product on one thread uses
    no more CPU than wall time (with more threads it would use up to one core each)."""
    probe = (
        "import time, numpy as np\n"
        "a = np.ones((1500, 1500), dtype=np.float32)\n"
        "a @ a\n"
        "w, c = time.perf_counter(), time.process_time()\n"
        "for _ in range(6): a @ a\n"
        "print(time.process_time() - c, time.perf_counter() - w)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env[BLAS_THREADS_VARIABLE] = "1"
    cpu, wall = map(float, _run(probe, env).split())
    assert cpu <= wall * 1.2 + 0.02, f"{cpu:.3f} s of CPU in {wall:.3f} s: more than one thread"
