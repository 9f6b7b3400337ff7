"""Choose the upstream transport, and defer aiohttp where no upstream is configured at start.

The service's one ``httpx.AsyncClient`` sends every upstream call through
:class:`~service.llm.transport.AiohttpTransport`. When the settings name an upstream the
answer path calls (``MODEL_BASE_URL``, ``EMBEDDING_BASE_URL``) that transport is built at
start-up, so the first answer pays no import. Otherwise (the extractive answerer with the
bundled embedder: nothing calls out unless a tool or a later prompt does)
:class:`DeferredTransport` imports aiohttp (~0.2 s of start-up CPU) on the first request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from service.llm.transport import AiohttpTransport

__all__ = ["DeferredTransport", "build_transport"]


def _open(limits: httpx.Limits) -> AiohttpTransport:
    # Deferred: aiohttp is imported only when an upstream call is made or configured.
    from service.llm.transport import AiohttpTransport  # noqa: PLC0415

    return AiohttpTransport(limits)


class DeferredTransport(httpx.AsyncBaseTransport):
    """An :class:`~service.llm.transport.AiohttpTransport` built on the first request."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._transport: AiohttpTransport | None = None

    @property
    def opened(self) -> bool:
        """Whether the first request has built the transport (and imported aiohttp)."""
        return self._transport is not None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the aiohttp transport, built now if needed."""
        if self._transport is None:
            self._transport = _open(self._limits)
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the transport's pool, if it was opened."""
        if self._transport is not None:
            await self._transport.aclose()


def build_transport(upstream: bool, limits: httpx.Limits) -> AiohttpTransport | DeferredTransport:
    """The aiohttp transport now when an ``upstream`` is configured, else a deferred one."""
    if upstream:
        return _open(limits)
    return DeferredTransport(limits)
