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
handed to httpx undecoded, so content-encoding is decoded by httpx as before.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]


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
        except aiohttp.ConnectionTimeoutError as error:
            raise httpx.ConnectTimeout(str(error), request=request) from error
        except (TimeoutError, aiohttp.ServerTimeoutError) as error:
            raise httpx.ReadTimeout(str(error) or "read timed out", request=request) from error
        except aiohttp.ClientConnectorError as error:
            raise httpx.ConnectError(str(error), request=request) from error
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as error:
            raise httpx.RemoteProtocolError(str(error), request=request) from error
        except (aiohttp.ClientError, OSError) as error:
            raise httpx.ReadError(str(error) or type(error).__name__, request=request) from error
        return httpx.Response(
            status,
            headers=list(headers),
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
            # aiohttp closes its transports on the next loop iterations.
            await asyncio.sleep(0)
