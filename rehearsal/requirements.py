"""What ``promptctl rehearse`` needs beyond the runtime: the ``rehearse`` extra and Prometheus."""

from __future__ import annotations

import importlib.util

from rehearsal import prometheus as _prometheus

__all__ = ["EXTRA_MODULES", "find_missing_requirements"]

#: Import name → distribution, for the ``rehearse`` extra.
EXTRA_MODULES = {"kmock": "kmock", "celpy": "cel-python", "jsonpatch": "jsonpatch"}


def find_missing_requirements() -> list[str]:
    """One sentence per missing piece, saying how to install it; empty when all is there."""
    problems = []
    prometheus = _prometheus.PROMETHEUS
    absent = [dist for module, dist in EXTRA_MODULES.items() if not _importable(module)]
    if absent:
        problems.append(
            f"the rehearse extra is not installed (missing {', '.join(absent)}): "
            "pip install 'prompt-rollouts[rehearse]'"
        )
    if prometheus is None:
        problems.append(
            "the prometheus binary is not installed: install the Debian package prometheus "
            "(sudo apt-get install prometheus, or `make system-deps` in a checkout), or put "
            "a prometheus 2.x binary on PATH"
        )
    return problems


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
