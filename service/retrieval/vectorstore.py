"""Open the Qdrant client the settings describe: a server, a local folder, or memory.

``QDRANT_URL`` set: a Qdrant server (with ``QDRANT_API_KEY``). Otherwise the
embedded local store in ``QDRANT_PATH`` (its folder is created), or in memory
when that is ``:memory:``. The same client calls work on all three; the embedded
store's client is a :class:`~service.retrieval.mirror.MirroredQdrant`, which searches
an exact in-memory copy of each collection (kept in sync with every write). The local
store admits one process per folder; a second one gets a
:class:`~service.errors.VectorStoreError` that says what to do.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import TracebackType

from qdrant_client import AsyncQdrantClient
from qdrant_client.http.exceptions import (
    ApiException,
    ResponseHandlingException,
    UnexpectedResponse,
)

from service.errors import RetrievalError, VectorStoreError
from service.retrieval.mirror import MirroredQdrant
from service.settings import Settings

__all__ = ["MEMORY", "STORE_ERRORS", "VectorStoreError", "build_store_error", "open_qdrant"]

MEMORY = ":memory:"
_LOCKED = "already accessed by another instance"

#: What client calls raise: ApiException from a server, ValueError from the local store.
STORE_ERRORS: tuple[type[Exception], ...] = (ApiException, ValueError)


def open_qdrant(settings: Settings) -> AsyncQdrantClient:
    """A client for the configured store; the caller closes it (``await client.close()``)."""
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


def build_store_error(exc: Exception, collection: str) -> RetrievalError:
    """A RetrievalError that says what a failed client call on ``collection`` means (pure)."""
    missing = (isinstance(exc, UnexpectedResponse) and exc.status_code == 404) or (
        isinstance(exc, ValueError) and "not found" in str(exc)
    )
    if missing:
        return RetrievalError(
            f"collection {collection!r} does not exist: index the corpus first "
            f"(promptctl index DIR --collection {collection})"
        )
    if isinstance(exc, ResponseHandlingException):
        return VectorStoreError(f"the Qdrant server cannot be reached: {exc}")
    return RetrievalError(f"the vector store failed on collection {collection!r}: {exc}")
