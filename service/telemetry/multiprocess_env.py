"""Whether the workers' metrics go to files: decided from the environment, before
prometheus-client is imported (it picks its mode once, at import).

This module imports nothing of prometheus-client, so ``service/__main__.py`` can run
:func:`apply_multiprocess_env` first: with one worker (the default) the variable is
dropped and the single process keeps plain in-memory values, paying nothing for files;
with more, :mod:`service.supervisor` sets it for the workers it spawns.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

__all__ = [
    "MULTIPROC_VARIABLES",
    "apply_multiprocess_env",
    "decide_multiprocess_env",
    "multiprocess_dir",
]

#: The variable prometheus-client reads (and its deprecated lower-case spelling).
MULTIPROC_VARIABLES = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


def multiprocess_dir(environ: Mapping[str, str] = os.environ) -> str | None:
    """The folder of the workers' metric files, or None (one worker)."""
    for name in MULTIPROC_VARIABLES:
        if environ.get(name):
            return environ[name]
    return None


def decide_multiprocess_env(environ: Mapping[str, str]) -> bool:
    """Whether ``PROMETHEUS_MULTIPROC_DIR`` may stay (pure): only with WEB_CONCURRENCY > 1.

    Settings read variable names in any case, so ``web_concurrency`` counts too; a value
    that is not a number is left for the settings to refuse (the variable is kept).
    """
    for name, value in environ.items():
        if name.upper() == "WEB_CONCURRENCY":
            text = value.strip()
            return not (text == "" or (text.isdigit() and int(text) <= 1))
    return False


def apply_multiprocess_env(environ: MutableMapping[str, str]) -> None:
    """Drop the multi-process variables unless several workers will run."""
    if not decide_multiprocess_env(environ):
        for name in MULTIPROC_VARIABLES:
            environ.pop(name, None)
