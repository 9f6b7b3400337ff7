"""One tool call over HTTP, with the SSRF checks at the socket (I/O).

::

    URL ──decide_host──> name allowed? ──fetch_addresses──> decide_target ──> connect to that IP

The request goes to the checked IP itself (the URL's host replaced by it; ``Host`` and
TLS SNI keep the name), so a second DNS answer (rebinding) is never used. Redirects are
not followed (a 3xx is a failure), proxies from the environment are ignored, and at
most ``max_bytes`` of the body are read. Every failure is a :class:`ToolCallError` whose
`reason` is a bounded metric label.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from api.v1alpha1 import ToolHeader
from service.tools.arguments import ToolHttpRequest
from service.tools.ssrf import Allowlist, IPAddress, decide_host, decide_target

__all__ = [
    "HttpToolResult",
    "Resolver",
    "ToolCallError",
    "call_http_tool",
    "fetch_addresses",
    "fetch_header_values",
]

#: host, port -> the addresses it resolves to.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


class ToolCallError(Exception):
    """A tool call that failed: `reason` is a metric label, the message what the model is told."""

    def __init__(self, reason: str, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class HttpToolResult:
    """A 2xx answer's status and body text (cut at the byte limit)."""

    status: int
    text: str
    truncated: bool


async def fetch_addresses(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (the system resolver, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def fetch_header_values(
    headers: list[ToolHeader], secrets_dir: Path, environ: Mapping[str, str]
) -> dict[str, str]:
    """Each header's value from the environment or a mounted Secret key."""
    values: dict[str, str] = {}
    for header in headers:
        source = header.value_from
        if source.env is not None:
            value = environ.get(source.env)
            where = f"environment variable {source.env}"
        else:
            ref = source.secret_key_ref
            assert ref is not None  # the model validator guarantees one of them
            where = f"secret {ref.name} key {ref.key}"
            try:
                value = (secrets_dir / ref.name / ref.key).read_text(encoding="utf-8").strip()
            except OSError:
                value = None
        if not value:
            raise ToolCallError("secret_missing", f"header {header.name}: {where} is not set")
        values[header.name] = value
    return values


async def _target(url: str, allow: Allowlist, resolver: Resolver) -> tuple[httpx.URL, str, str]:
    """The URL with its host replaced by the checked address, the name, the Host header."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ToolCallError("scheme", "only http and https tools are called")
    host = parts.hostname or ""
    decision = decide_host(host, allow)
    if decision.reason is None and decision.address is None:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = await resolver(host, port)
        except (OSError, ValueError, UnicodeError):
            addresses = []
        decision = decide_target(host, addresses, allow)
    if decision.reason is not None or decision.address is None:
        raise ToolCallError(decision.reason or "host_not_allowed", decision.detail)
    try:
        original = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise ToolCallError("invalid_url", "the tool URL is not valid") from error
    pinned = original.copy_with(host=str(decision.address))
    return pinned, original.host, original.netloc.decode("ascii")


async def call_http_tool(
    client: httpx.AsyncClient,
    request: ToolHttpRequest,
    headers: Mapping[str, str],
    allow: Allowlist,
    resolver: Resolver,
    seconds: float,
    max_bytes: int,
) -> HttpToolResult:
    """Send `request` to its checked address within `seconds`; a 2xx body, else ToolCallError."""
    try:
        async with asyncio.timeout(seconds):
            url, name, netloc = await _target(request.url, allow, resolver)
            sent = client.build_request(
                request.method,
                url,
                params=request.params or None,
                json=request.body,
                headers={**headers, "Host": netloc},
                extensions={"sni_hostname": name, "timeout": httpx.Timeout(seconds).as_dict()},
            )
            response = await client.send(sent, stream=True, follow_redirects=False)
            try:
                body, truncated = await _read_capped(response, max_bytes)
            finally:
                await response.aclose()
    except TimeoutError as error:
        raise ToolCallError("timeout", f"the tool did not answer within {seconds:.3g}s") from error
    except httpx.TimeoutException as error:
        raise ToolCallError("timeout", f"the tool did not answer within {seconds:.3g}s") from error
    except httpx.ConnectError as error:
        raise ToolCallError("connect", "cannot connect to the tool") from error
    except httpx.HTTPError as error:
        raise ToolCallError(
            "transport", f"the tool call failed ({type(error).__name__})"
        ) from error
    if 300 <= response.status_code < 400:
        raise ToolCallError(
            "redirect",
            f"the tool answered a redirect ({response.status_code}); not followed",
            response.status_code,
        )
    if response.status_code >= 400:
        raise ToolCallError(
            "status", f"the tool answered HTTP {response.status_code}", response.status_code
        )
    text = body.decode(response.encoding or "utf-8", errors="replace")
    return HttpToolResult(response.status_code, text, truncated)


async def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """At most `max_bytes` of the body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False
