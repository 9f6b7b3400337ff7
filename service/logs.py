"""Logging set-up for the service's own loggers (``service.*``)."""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]


def configure_logging(level: str) -> None:
    """Send ``service.*`` records at `level` and above to stderr, once."""
    logger = logging.getLogger("service")
    logger.setLevel(level)
    if not any(getattr(h, "_prompt_rollouts", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        handler._prompt_rollouts = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
