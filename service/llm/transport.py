"""An httpx transport over aiohttp's connection pool: the httpx API, a faster client.

httpx's own pool (httpcore + h11 + anyio) costs more CPU per request than the rest of
the answer path together; aiohttp's C-accelerated client does the same work for a
fraction of it. Callers keep ``httpx.AsyncClient`` (its timeouts, event hooks, the
OpenTelemetry httpx instrumentation, ``httpx.MockTransport`` in tests); only the bytes
on the wire go through aiohttp.

Failures map to the httpx exceptions the callers already handle::

    aiohttp ConnectionTimeoutError     -> httpx.ConnectTimeout
    aiohttp SocketTimeoutError/timeout -> httpx.ReadTimeout
    aiohttp ClientConnectorError       -> httpx.ConnectError
    server closed, reset, bad framing  -> httpx.ReadError / httpx.RemoteProtocolError

Bodies are read whole (the service's upstream calls are small JSON exchanges), and
handed to httpx undecoded, so content-encoding is decoded by httpx as before; a request
carrying the :data:`STREAM_EXTENSION` gets its response at the headers and its body as it
arrives (streamed chat answers).

:meth:`AiohttpTransport.post` is the same pool without httpx's request and response
models, for the one call on every answer's path (``service.llm.openai_chat``, while
tracing is off): the body decoded as httpx decodes it, the failures the same httpx
exceptions.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping

import aiohttp
import httpx

from service.llm.chat import STREAM_EXTENSION, RawResponse

__all__ = ["STREAM_EXTENSION", "AiohttpTransport", "RawResponse"]


def _httpx_error(error: BaseException, request: httpx.Request | None) -> httpx.TransportError:
    """The httpx exception for an aiohttp failure (see the module docstring)."""
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(error), request=request)
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(str(error) or "read timed out", request=request)
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(error), request=request)
    if isinstance(error, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(str(error), request=request)
    return httpx.ReadError(str(error) or type(error).__name__, request=request)


class _AiohttpStream(httpx.AsyncByteStream):
    """A response body read from aiohttp as it arrives."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._response.content.iter_any():
                yield data
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise _httpx_error(error, self._request) from error

    async def aclose(self) -> None:
        # Back to the pool when read whole; otherwise the connection is closed.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one lazily opened ``aiohttp.ClientSession``."""

    def __init__(self, limits: httpx.Limits, verify: ssl.SSLContext | bool = True) -> None:
        self._limits = limits
        self._ssl: ssl.SSLContext | bool = verify
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Opened inside the running loop, on the first request.
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry or 0.0,
            ssl=self._ssl,
        )
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
            trust_env=False,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """One request; the response body read whole."""
        if self._session is None or self._session.closed:
            self._session = self._open()
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        body = await request.aread()
        if request.extensions.get(STREAM_EXTENSION):
            return await self._open_stream(request, body, timeout)
        try:
            async with self._session.request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                content = await response.read()
                status, headers = response.status, response.raw_headers
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise _httpx_error(error, request) from error
        return httpx.Response(
            status,
            headers=list(headers),
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], seconds: float
    ) -> RawResponse:
        """POST `body` within `seconds` per phase (as ``httpx.Timeout(seconds)``); the
        response read whole, gzip/deflate decoded; failures as the httpx exceptions."""
        if self._session is None or self._session.closed:
            self._session = self._open()
        limits = aiohttp.ClientTimeout(
            total=None, connect=seconds, sock_connect=seconds, sock_read=seconds
        )
        try:
            async with self._session.post(
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=limits,
                auto_decompress=True,
            ) as response:
                return RawResponse(response.status, response.headers, await response.read())
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise _httpx_error(error, None) from error

    async def _open_stream(
        self, request: httpx.Request, body: bytes, limits: aiohttp.ClientTimeout
    ) -> httpx.Response:
        """The response as soon as its headers arrived; its body read as it comes."""
        assert self._session is not None  # opened by the caller
        try:
            response = await self._session.request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=limits,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise _httpx_error(error, request) from error
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_AiohttpStream(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
            # aiohttp closes its transports on the next loop iterations.
            await asyncio.sleep(0)
