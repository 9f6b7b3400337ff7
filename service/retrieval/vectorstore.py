"""Open the vector store the settings describe: a server, a local folder, or memory.

``QDRANT_URL`` set: a Qdrant server (with ``QDRANT_API_KEY``). Otherwise the
embedded local store in ``QDRANT_PATH`` (its folder is created), or in memory
when that is ``:memory:``.

:func:`open_store` is what the service opens: for ``:memory:`` a
:class:`~service.retrieval.store.MemoryStore` (the exact in-memory index is the store; no
qdrant-client), else a :class:`~service.retrieval.qdrant_store.QdrantStore` over
:func:`open_qdrant`'s client. :func:`open_qdrant` gives the qdrant-client itself (``promptctl
index``, tests): the embedded store's client is a
:class:`~service.retrieval.mirror.MirroredQdrant`, which searches an exact in-memory copy of
each collection (kept in sync with every write). The local store admits one process per
folder; a second one gets a :class:`~service.errors.VectorStoreError` that says what to do.

qdrant-client is imported inside these functions, never at module level: its import is
~1/3 of the service's start-up CPU (docs/benchmarks-performance.md, "Cold start"), and
``tests/architecture/test_lazy_imports.py`` keeps ``import service.app`` free of it.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from service.errors import VectorStoreError
from service.retrieval.store import MemoryStore, VectorStore
from service.settings import Settings

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

__all__ = ["MEMORY", "VectorStoreError", "as_store", "open_qdrant", "open_store"]

MEMORY = ":memory:"
_LOCKED = "already accessed by another instance"


def open_store(settings: Settings) -> VectorStore:
    """The store the service indexes into and searches; the caller closes it."""
    if not settings.qdrant_url and settings.qdrant_path == MEMORY:
        return MemoryStore()
    return as_store(open_qdrant(settings))


def as_store(client: VectorStore | AsyncQdrantClient) -> VectorStore:
    """``client`` as a VectorStore: a store as it is, a qdrant-client wrapped (it stays the
    caller's to close, or the wrapper's through ``close``)."""
    if isinstance(client, VectorStore):
        return client
    # Only a qdrant-client reaches here, so qdrant-client is already imported.
    from service.retrieval.qdrant_store import QdrantStore  # noqa: PLC0415

    return QdrantStore(client)


def open_qdrant(settings: Settings) -> AsyncQdrantClient:
    """A client for the configured store; the caller closes it (``await client.close()``)."""
    # Deferred: qdrant-client is imported only when a Qdrant client is actually opened.
    from qdrant_client import AsyncQdrantClient  # noqa: PLC0415

    from service.retrieval.mirror import MirroredQdrant  # noqa: PLC0415 - imports qdrant-client

    if settings.qdrant_url:
        key = settings.qdrant_api_key
        # No start-up version check: it runs a blocking request in a thread and only
        # warns; an unreachable or incompatible server fails the first real call anyway.
        return AsyncQdrantClient(
            url=settings.qdrant_url,
            api_key=key.get_secret_value() if key else None,
            check_compatibility=False,
        )
    if settings.qdrant_path == MEMORY:
        return MirroredQdrant(location=MEMORY)
    path = Path(settings.qdrant_path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        return MirroredQdrant(path=str(path))
    except RuntimeError as exc:
        if _LOCKED not in str(exc):
            raise
        _close_leaked_lock_file(exc.__traceback__)
        raise VectorStoreError(
            f"the local Qdrant store {path} is in use by another process (the embedded store "
            "allows one process per folder): stop that process (for example the running "
            "service) and retry, point QDRANT_PATH at another folder, or set QDRANT_URL "
            "to share a Qdrant server"
        ) from None
    except OSError as exc:
        raise VectorStoreError(
            f"cannot open the local Qdrant store {path}: {exc.strerror or exc}"
        ) from exc


def _close_leaked_lock_file(tb: TracebackType | None) -> None:
    """Close the lock file qdrant-client leaves open when locking fails.

    Otherwise it surfaces later as a ResourceWarning "unclosed file .../.lock".
    """
    while tb is not None:
        leaked = getattr(tb.tb_frame.f_locals.get("self"), "_flock_file", None)
        if isinstance(leaked, io.IOBase):
            leaked.close()
        tb = tb.tb_next
