"""The emulator's admission (schema, pruning, CEL): the rehearsal component
`rehearsal.admission`."""

from __future__ import annotations

from rehearsal.admission import InvalidObjectError, admit

__all__ = ["InvalidObjectError", "admit"]
