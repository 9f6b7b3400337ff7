"""Small network helpers for tests (moved to `rehearsal.net`, re-exported here)."""

from __future__ import annotations

from rehearsal.net import free_port

__all__ = ["free_port"]
