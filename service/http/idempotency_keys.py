"""Idempotency-Key rules and values (pure): key syntax, scopes, fingerprints, upstream keys,
the stored response and what a store keeps per key.

The scope is the authenticated key's id (``AUTH_MODE=none``: the Authorization header's hash,
else the client address; see :class:`service.http.auth.Caller`), so no caller can read, block or
probe another's key. The fingerprint covers everything that changes the answer (body,
``X-Prompt-Version``, tenant), and the key sent to the model is an HMAC of the scope key
under a per-install secret (:func:`build_upstream_key`), never the caller's own key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

from service.errors import (
    IdempotencyKeyInFlightError,
    IdempotencyKeyInvalidError,
    IdempotencyKeyReusedError,
)

__all__ = [
    "MAX_KEY_LENGTH",
    "BeginResult",
    "Record",
    "Replay",
    "Started",
    "StoredResponse",
    "build_fingerprint",
    "build_scope_key",
    "build_upstream_key",
    "decide_existing",
    "parse_key_header",
    "to_milliseconds",
    "validate_key",
]

MAX_KEY_LENGTH = 255


def validate_key(key: str) -> str:
    """Return ``key`` if it is 1 to 255 printable ASCII characters (0x21-0x7E), else raise."""
    if not key:
        raise IdempotencyKeyInvalidError("empty", "Idempotency-Key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise IdempotencyKeyInvalidError(
            "too-long",
            f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters, got {len(key)}",
        )
    for position, char in enumerate(key, start=1):
        if not "\x21" <= char <= "\x7e":
            raise IdempotencyKeyInvalidError(
                "charset",
                "Idempotency-Key must be printable ASCII without spaces (0x21-0x7E); "
                f"character {position} is U+{ord(char):04X}",
            )
    return key


def parse_key_header(value: str) -> str:
    """The key in an ``Idempotency-Key`` header, validated. The draft sends it as a
    structured-field string: ``"abc"`` and ``abc`` are one key."""
    unquoted = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    return validate_key(unquoted)


def build_fingerprint(
    body: bytes, *, pinned_version: str | None = None, tenant: str | None = None
) -> str:
    """SHA-256 of the body's canonical JSON (or of the raw bytes when it is not JSON), the
    ``X-Prompt-Version`` header and the tenant: a repeat must match all three."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
        kind = "json:"
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        canonical, kind = body, "raw:"
    digest = hashlib.sha256(canonical)
    if pinned_version is not None or tenant is not None:
        context = json.dumps([pinned_version, tenant], separators=(",", ":"))
        digest.update(b"\x00" + context.encode())
    return kind + digest.hexdigest()


def build_scope_key(identity: str | None, key: str) -> str:
    """The storage key for (client identity, key); the identity is hashed, never stored."""
    owner = "anonymous" if identity is None else hashlib.sha256(identity.encode()).hexdigest()
    return f"{owner}:{validate_key(key)}"


def build_upstream_key(secret: bytes, scope_key: str) -> str:
    """The Idempotency-Key sent to the model for ``scope_key`` (see ``build_scope_key``):
    HMAC-SHA256 under the install's secret, so callers who pick the same key never
    collide at the provider, and the provider never sees what a caller sent (pure)."""
    if not secret:
        raise ValueError("the idempotency secret must not be empty")
    return hmac.new(secret, scope_key.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    """The response replayed byte for byte to a retried request."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; the body is base64."""
        return {
            "status": self.status,
            "headers": [list(pair) for pair in self.headers],
            "body": base64.b64encode(self.body).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredResponse:
        """Inverse of ``to_dict``."""
        return cls(
            status=int(data["status"]),
            headers=tuple((str(name), str(value)) for name, value in data["headers"]),
            body=base64.b64decode(data["body"], validate=True),
        )

    def to_json(self) -> str:
        """``to_dict`` as a JSON string."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> StoredResponse:
        """Inverse of ``to_json``."""
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class Started:
    """The caller holds the lease: run the request, then ``complete`` or ``release``."""

    token: str


@dataclass(frozen=True)
class Replay:
    """The request already ran: send this response again."""

    response: StoredResponse


BeginResult = Started | Replay


@dataclass(frozen=True)
class Record:
    """What a store keeps per scope key; in flight until ``response`` is set."""

    fingerprint: str
    token: str
    response: StoredResponse | None = None

    def to_json(self) -> str:
        """The JSON a shared store keeps; its scripts read ``state``, ``token``, ``fingerprint``."""
        return json.dumps(
            {
                "state": "in_flight" if self.response is None else "done",
                "fingerprint": self.fingerprint,
                "token": self.token,
                "response": None if self.response is None else self.response.to_dict(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Record:
        """Inverse of ``to_json``."""
        data = json.loads(text)
        response = data["response"] if data["state"] == "done" else None
        return cls(
            fingerprint=data["fingerprint"],
            token=data["token"],
            response=None if response is None else StoredResponse.from_dict(response),
        )


def decide_existing(record: Record, fingerprint: str) -> Replay:
    """A live record exists for the key: replay it, or raise the conflict (pure)."""
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReusedError(
            "Idempotency-Key was already used with a different request body"
        )
    if record.response is None:
        raise IdempotencyKeyInFlightError(
            "a request with this Idempotency-Key is still being processed"
        )
    return Replay(record.response)


def to_milliseconds(seconds: float) -> int:
    """A lease or TTL in whole milliseconds (at least 1); refuses non-positive durations."""
    if not seconds > 0:
        raise ValueError(f"a lease or TTL must be positive, got {seconds}")
    return max(1, math.ceil(seconds * 1000))
