"""The HTTP boundary: routers, problem details, ASGI middleware, idempotency."""
