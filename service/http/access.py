"""Who is calling: authentication, the tenant in logs and spans, and the tenant quota.

:class:`AccessMiddleware` (pure ASGI, so the tenant is bound for every log line of the
request, uvicorn's access line included) runs before the body is read:

1. operational paths (``/healthz``, ``/readyz``, ``/metrics``, ``/docs``, ...) pass as is;
2. :func:`decide_caller` (pure) turns the ``Authorization`` header into a :class:`Caller`
   or a refusal: with ``AUTH_MODE=api-key`` a missing or unknown key is a 401 with
   ``WWW-Authenticate: Bearer``; with ``none`` every caller is tenant ``anonymous``;
3. the tenant is bound to structlog's context variables and set on the server span;
4. ``TENANT_RPM`` is checked (429 + ``Retry-After`` when used up).

Per-prompt permission (403) is checked by the handlers once they know the prompt
(:func:`require_prompt`).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import AccessError, PermissionDeniedError
from service.http.auth import ANONYMOUS_TENANT, Caller, KeyFile, decide_prompt_allowed
from service.http.middleware import send_problem
from service.http.problems import problem_response
from service.http.quota import QuotaStore, QuotaUnavailableError
from service.telemetry.logs import Verbatim
from service.telemetry.metrics import Metrics

__all__ = [
    "OPEN_PATHS",
    "TENANT_ATTRIBUTE",
    "AccessControl",
    "AccessMiddleware",
    "Refusal",
    "decide_bind_host",
    "decide_caller",
    "install_access_problem_handlers",
    "is_loopback",
    "require_prompt",
]

_log = logging.getLogger(__name__)
#: Paths that never need a key: probes, metrics, API docs.
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
#: Span attribute naming the tenant.
TENANT_ATTRIBUTE = "prompt_rollouts.tenant"
_CHALLENGE = 'Bearer realm="prompt-rollouts"'


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused before it reaches a handler."""

    reason: Literal["missing", "invalid"]
    detail: str


@functools.lru_cache(maxsize=64)  # asked on every request, of the few local addresses
def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) reaches this machine only (pure)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=64)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def decide_bind_host(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The address uvicorn listens on, from the same sources its CLI reads: ``--host``
    (``--host=X`` or ``--host X``), then ``UVICORN_HOST``, then its default 127.0.0.1 (pure)."""
    for index, arg in enumerate(argv):
        if arg.startswith("--host="):
            return arg.removeprefix("--host=")
        if arg == "--host" and index + 1 < len(argv):
            return argv[index + 1]
    return environ.get("UVICORN_HOST") or "127.0.0.1"


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def decide_caller(
    mode: str, keys: KeyFile | None, authorization: str | None, client_host: str | None
) -> Caller | Refusal:
    """The caller a request's Authorization header (and address) names (pure)."""
    if mode == "none":
        if authorization is not None:
            digest = hashlib.sha256(authorization.encode("utf-8", "surrogateescape")).hexdigest()
            scope = f"auth:{digest}"
        else:
            scope = f"addr:{client_host or 'unknown'}"
        return Caller(None, ANONYMOUS_TENANT, frozenset({"*"}), scope)
    token = _bearer(authorization)
    if token is None:
        return Refusal(
            "missing", "this endpoint needs an API key: send Authorization: Bearer <key>"
        )
    key = keys.ring.authenticate(token) if keys is not None else None
    if key is None:
        return Refusal("invalid", "the API key is not valid")
    return Caller(key.id, key.tenant, key.prompts, f"key:{key.id}")


def require_prompt(caller: Caller, prompt: str, metrics: Metrics) -> None:
    """Raise PermissionDeniedError (403) unless the caller's key may use ``prompt``."""
    if not decide_prompt_allowed(caller.prompts, prompt):
        metrics.auth_failures.labels("forbidden").inc()
        raise PermissionDeniedError(f"API key {caller.key_id} may not use prompt {prompt!r}")


@dataclass
class AccessControl:
    """What the middleware needs, opened by the lifespan."""

    mode: Literal["none", "api-key"]
    keys: KeyFile | None
    quota: QuotaStore
    tenant_rpm: int
    metrics: Metrics
    warned_exposed: bool = False

    def warn_if_exposed(self, host: str) -> None:
        """Log a loud warning (once) when no authentication guards a non-loopback address."""
        if self.mode != "none" or self.warned_exposed or is_loopback(host):
            return
        self.warned_exposed = True
        # The address is not personal data: logged verbatim, so the operator sees it.
        structlog.get_logger(__name__).warning(
            "AUTH_MODE=none on a non-loopback address: ANYONE WHO CAN REACH IT CAN CALL "
            "THE API and spend model tokens. Set AUTH_MODE=api-key and API_KEYS_FILE "
            "(docs/security.md), or listen on 127.0.0.1 only.",
            address=Verbatim(host),
        )


class AccessMiddleware:
    """Authenticates, binds the tenant, applies TENANT_RPM (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        access: AccessControl = scope["app"].state.resources.access
        server = scope.get("server")
        if server and _is_ip(str(server[0])):  # the local address the request came in on
            access.warn_if_exposed(str(server[0]))
        headers = dict(scope["headers"])
        raw = headers.get(b"authorization")
        client = scope.get("client")
        caller = decide_caller(
            access.mode,
            access.keys,
            None if raw is None else raw.decode("latin-1"),
            str(client[0]) if client else None,
        )
        if isinstance(caller, Refusal):
            access.metrics.auth_failures.labels(caller.reason).inc()
            challenge = _CHALLENGE + (
                ', error="invalid_token"' if caller.reason == "invalid" else ""
            )
            await send_problem(
                scope,
                send,
                401,
                "unauthenticated",
                "Unauthenticated",
                caller.detail,
                ((b"www-authenticate", challenge.encode()),),
            )
            return
        scope.setdefault("state", {})["caller"] = caller
        trace.get_current_span().set_attribute(TENANT_ATTRIBUTE, caller.tenant)
        with structlog.contextvars.bound_contextvars(tenant=caller.tenant):
            metrics = access.metrics
            metrics.tenant_counter(metrics.tenant_requests, caller.tenant).inc()
            if access.tenant_rpm > 0:
                try:
                    decision = await access.quota.admit(caller.tenant, access.tenant_rpm)
                except QuotaUnavailableError as error:
                    metrics.quota_errors.inc()
                    _log.warning("tenant quota not checked (store failed: %s)", error)
                else:
                    if not decision.allowed:
                        metrics.tenant_counter(metrics.quota_rejections, caller.tenant).inc()
                        await send_problem(
                            scope,
                            send,
                            429,
                            "tenant-quota-exceeded",
                            "Tenant quota exceeded",
                            f"more than {access.tenant_rpm} requests in the last minute for "
                            "this tenant (TENANT_RPM)",
                            ((b"retry-after", str(math.ceil(decision.retry_after)).encode()),),
                        )
                        return
            await self.app(scope, receive, send)


async def _access_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AccessError)
    return problem_response(request, 403, "forbidden", "Forbidden", str(error))


def install_access_problem_handlers(app: FastAPI) -> None:
    """Map PermissionDeniedError raised by handlers to a 403 problem."""
    app.add_exception_handler(PermissionDeniedError, _access_error)
