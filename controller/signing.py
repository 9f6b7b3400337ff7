"""The signature on everything the controller sends out (webhook gates, notifications).

``X-Prompt-Rollouts-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``; the key
comes from a Kubernetes Secret. Receivers verify with :func:`verify_signature` (constant
time), as the rehearsal's receiver and the documented example do.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "sign_body", "verify_signature"]

SIGNATURE_HEADER = "X-Prompt-Rollouts-Signature"


def sign_body(body: bytes, secret: str) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``: the signature header's value."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Whether `header` is the signature of `body` with `secret` (constant time)."""
    if not header or not header.startswith("sha256="):
        return False
    # Bytes: compare_digest refuses non-ASCII str, and a header may carry any byte.
    expected = sign_body(body, secret).encode()
    return hmac.compare_digest(header.encode("utf-8", "surrogateescape"), expected)
