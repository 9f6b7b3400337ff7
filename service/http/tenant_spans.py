"""The span processor that stamps the caller's tenant on every span started in a request.

A module of its own so that the OpenTelemetry SDK (~50 ms of import) is loaded only when
tracing is on: :func:`service.app.create_app` imports it then, never at start-up otherwise
(``tests/architecture/test_lazy_imports.py``).
"""

from __future__ import annotations

import structlog
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from service.http.access import TENANT_ATTRIBUTE

__all__ = ["TenantSpanProcessor"]


class TenantSpanProcessor(SpanProcessor):
    """Sets the tenant bound by AccessMiddleware on every span started inside a request."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        """Stamp the request's tenant, if one is bound."""
        tenant = structlog.contextvars.get_contextvars().get("tenant")
        if isinstance(tenant, str):
            span.set_attribute(TENANT_ATTRIBUTE, tenant)

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing to do when a span ends."""
