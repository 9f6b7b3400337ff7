"""Benchmarks of the service: ``python -m bench.overhead`` (``make bench``).

- ``results``: what a run measures (``Params`` in, ``Results`` out) and its pure statistics.
- ``servers``: the fake model and the service as subprocesses on 127.0.0.1, and the
  retrieval-free prompt the service serves.
- ``load``: the load generator (one aiohttp session): prepared requests, latency pairs,
  bursts at saturation, the client's own CPU.
- ``profiling``: the service app in process under cProfile, own time per package.
- ``report``: docs/benchmarks.md from one run's results (pure).
- ``caveats``: what a reader needs to judge them: the load client check against the fake
  model's ceiling, the machine's load, and ``bench/tried.md`` (what was tried, by hand).
- ``runner``: one run: start both servers per upstream latency, measure, stop them.
- ``overhead``: the command line.
"""

import os

from service.blas_threads import apply_one_blas_thread

# The in-process measurements (retrieval, the profile) run numpy as `python -m service`
# does, on one BLAS thread: set before any bench module imports numpy.
apply_one_blas_thread(os.environ)
