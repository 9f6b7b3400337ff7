"""Python's garbage collector, set for a long-running server once start-up is over.

The answer path makes no reference cycles: over thousands of answers at 1 and 64 in
flight, not one collection found anything to free (docs/benchmarks-performance.md,
"Garbage collector"). Python's thresholds (700, 10, 10) still ran it, because at 64
answers in flight the objects of the answers under way count as new allocations: at
64 connections ~0.3 collections per answer, ~0.2 ms of the event loop's CPU per answer,
and every ~450 answers a full collection over the whole heap built at start-up (the app,
the prompts, the embedding model), 55-80 ms with the loop stopped.

:func:`settle_heap` does what long-running Python servers do instead:

- freeze the heap built at start-up (:func:`gc.freeze`): it is never walked again, so a
  full collection costs only what was allocated since. There is no collection first: it
  took 46-83 ms of the start-up and found 0 (``QDRANT_PATH=:memory:``) or 31 (the folder
  store) objects to free, which now stay;
- raise generation 0's threshold (``GC_GEN0_THRESHOLD``, 50,000 by default): the
  collector runs when the heap grows by that many tracked objects, not every 700
  allocations. Cycles are still collected (an error's traceback makes some); at most
  that many objects wait for it.

``GC_GEN0_THRESHOLD=0`` leaves the collector as Python set it.
"""

from __future__ import annotations

import gc

__all__ = ["DEFAULT_GEN0_THRESHOLD", "decide_thresholds", "settle_heap"]

#: Generation 0's threshold once the service has started (Python's own is 700).
DEFAULT_GEN0_THRESHOLD = 50_000


def decide_thresholds(
    gen0_threshold: int, current: tuple[int, int, int]
) -> tuple[int, int, int] | None:
    """The collector's thresholds for the server, or None to leave them (and the heap) alone.

    Only generation 0's changes: the older generations keep their ratios. Settings refuse
    a negative value (``GC_GEN0_THRESHOLD``, ``ge=0``).
    """
    if gen0_threshold == 0:
        return None
    return (gen0_threshold, current[1], current[2])


def settle_heap(gen0_threshold: int) -> bool:
    """Freeze the start-up heap, then set generation 0's threshold.

    Call it once start-up is over. False when ``gen0_threshold`` is 0 (nothing done).
    """
    thresholds = decide_thresholds(gen0_threshold, gc.get_threshold())
    if thresholds is None:
        return False
    gc.freeze()
    gc.set_threshold(*thresholds)
    return True
