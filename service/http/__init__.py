"""The HTTP boundary: routers, problem details, ASGI middleware, idempotency.

The front door: ``promptctl`` (and anything outside the service) imports these names from
here, never from the modules inside (tests/architecture/test_layers.py).
"""

from service.http.auth import build_keyring, hash_key

__all__ = ["build_keyring", "hash_key"]
