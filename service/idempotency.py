"""Idempotency-Key support: pure key/fingerprint rules and a store of leases and responses.

A request carrying an ``Idempotency-Key`` runs at most once per (caller scope, key). The
scope is the authenticated key's id (``AUTH_MODE=none``: the Authorization header's hash,
else the client address; see :class:`service.auth.Caller`), so no caller can read, block
or probe another's key. The fingerprint covers everything that changes the answer (body,
``X-Prompt-Version``, tenant), and the key sent to the model is an HMAC of the scope key
under a per-install secret (:func:`build_upstream_key`), never the caller's own key.


1. ``begin`` takes a lease (``Started``), or returns the stored response (``Replay``), or
   raises ``IdempotencyKeyReusedError`` (422: other body) / ``IdempotencyKeyInFlightError``
   (409: the first request is still running).
2. ``complete`` stores the response, if the caller still holds the lease.
3. ``release`` drops the lease (after a 5xx, say) so the client may retry.

Leases expire by themselves after ``lease_seconds``, so a crashed or cancelled request never
leaves a key stuck at 409. Stored responses expire after ``ttl_seconds``.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import json
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio

from service.errors import (
    IdempotencyKeyInFlightError,
    IdempotencyKeyInvalidError,
    IdempotencyKeyReusedError,
)

__all__ = [
    "MAX_KEY_LENGTH",
    "BeginResult",
    "IdempotencyStore",
    "MemoryIdempotencyStore",
    "RedisIdempotencyStore",
    "Replay",
    "Started",
    "StoredResponse",
    "build_fingerprint",
    "build_idempotency_store",
    "build_scope_key",
    "build_upstream_key",
    "validate_key",
]

MAX_KEY_LENGTH = 255


# --- pure rules -------------------------------------------------------------------------


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


# --- values -----------------------------------------------------------------------------


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
class _Record:
    """What a store keeps per scope key; in flight until ``response`` is set."""

    fingerprint: str
    token: str
    response: StoredResponse | None = None

    def to_json(self) -> str:
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
    def from_json(cls, text: str | bytes) -> _Record:
        data = json.loads(text)
        response = data["response"] if data["state"] == "done" else None
        return cls(
            fingerprint=data["fingerprint"],
            token=data["token"],
            response=None if response is None else StoredResponse.from_dict(response),
        )


def _decide_existing(record: _Record, fingerprint: str) -> Replay:
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


def _milliseconds(seconds: float) -> int:
    if not seconds > 0:
        raise ValueError(f"a lease or TTL must be positive, got {seconds}")
    return max(1, math.ceil(seconds * 1000))


# --- stores -----------------------------------------------------------------------------


class IdempotencyStore(Protocol):
    """Leases and stored responses per scope key (see ``build_scope_key``)."""

    async def begin(self, scope_key: str, fingerprint: str, lease_seconds: float) -> BeginResult:
        """Take a lease or replay; raises Reused (other fingerprint) or InFlight."""
        ...

    async def complete(
        self,
        scope_key: str,
        token: str,
        fingerprint: str,
        response: StoredResponse,
        ttl_seconds: float,
    ) -> bool:
        """Store ``response`` for ``ttl_seconds``; False (and nothing done) if the lease is lost."""
        ...

    async def release(self, scope_key: str, token: str) -> bool:
        """Drop the lease held by ``token``; False (and nothing done) if it is not held."""
        ...

    async def close(self) -> None:
        """Free the store's resources."""
        ...


@dataclass(frozen=True)
class _Entry:
    record: _Record
    expires_at: float


class MemoryIdempotencyStore:
    """One process's store: a dict with clock-based expiry and at most ``max_entries`` keys.

    When full, expired entries go first, then the oldest. Not shared between replicas.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, _Entry] = {}  # insertion order = age
        self._expiries: list[tuple[float, int, str, _Entry]] = []  # heap, stale items skipped
        self._pushes = 0

    async def begin(self, scope_key: str, fingerprint: str, lease_seconds: float) -> BeginResult:
        lease_ms = _milliseconds(lease_seconds)
        now = self._drop_expired()
        entry = self._entries.get(scope_key)
        if entry is not None:
            return _decide_existing(entry.record, fingerprint)
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        token = secrets.token_urlsafe(16)
        self._put(scope_key, _Entry(_Record(fingerprint, token), now + lease_ms / 1000))
        return Started(token)

    async def complete(
        self,
        scope_key: str,
        token: str,
        fingerprint: str,
        response: StoredResponse,
        ttl_seconds: float,
    ) -> bool:
        ttl_ms = _milliseconds(ttl_seconds)
        now = self._drop_expired()
        if not self._holds(scope_key, token, fingerprint):
            return False
        self._put(scope_key, _Entry(_Record(fingerprint, token, response), now + ttl_ms / 1000))
        return True

    async def release(self, scope_key: str, token: str) -> bool:
        self._drop_expired()
        if not self._holds(scope_key, token, None):
            return False
        del self._entries[scope_key]
        return True

    async def close(self) -> None:
        self._entries.clear()
        self._expiries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _holds(self, scope_key: str, token: str, fingerprint: str | None) -> bool:
        entry = self._entries.get(scope_key)
        return (
            entry is not None
            and entry.record.response is None
            and secrets.compare_digest(entry.record.token, token)
            and fingerprint in (None, entry.record.fingerprint)
        )

    def _put(self, scope_key: str, entry: _Entry) -> None:
        self._entries[scope_key] = entry
        self._pushes += 1
        heapq.heappush(self._expiries, (entry.expires_at, self._pushes, scope_key, entry))
        if len(self._expiries) > 2 * len(self._entries) + 1024:  # drop stale heap items
            self._expiries = [item for item in self._expiries if self._is_current(item)]
            heapq.heapify(self._expiries)

    def _is_current(self, item: tuple[float, int, str, _Entry]) -> bool:
        return self._entries.get(item[2]) is item[3]

    def _drop_expired(self) -> float:
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            item = heapq.heappop(self._expiries)
            if self._is_current(item):
                del self._entries[item[2]]
        return now


_BEGIN = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
"""

_COMPLETE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local record = cjson.decode(raw)
if record.state ~= 'in_flight' or record.token ~= ARGV[1] or record.fingerprint ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
"""

_RELEASE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local record = cjson.decode(raw)
if record.state ~= 'in_flight' or record.token ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


class RedisIdempotencyStore:
    """A store shared by every replica: JSON values with Redis-side expiry (PX).

    ``begin`` is one atomic ``SET NX PX`` (then ``GET`` of the existing value, in the same
    script); ``complete`` and ``release`` compare the lease token in a script before they
    write. ``close`` closes ``client``. Redis errors propagate (``redis.exceptions``).
    """

    def __init__(self, client: redis.asyncio.Redis, prefix: str = "promptrollouts:idem:") -> None:
        self._client = client
        self._prefix = prefix
        self._begin = client.register_script(_BEGIN)
        self._complete = client.register_script(_COMPLETE)
        self._release = client.register_script(_RELEASE)

    async def begin(self, scope_key: str, fingerprint: str, lease_seconds: float) -> BeginResult:
        token = secrets.token_urlsafe(16)
        value = _Record(fingerprint, token).to_json()
        existing = await self._begin(
            keys=[self._prefix + scope_key], args=[value, _milliseconds(lease_seconds)]
        )
        if existing is None:
            return Started(token)
        return _decide_existing(_Record.from_json(existing), fingerprint)

    async def complete(
        self,
        scope_key: str,
        token: str,
        fingerprint: str,
        response: StoredResponse,
        ttl_seconds: float,
    ) -> bool:
        value = _Record(fingerprint, token, response).to_json()
        done = await self._complete(
            keys=[self._prefix + scope_key],
            args=[token, fingerprint, value, _milliseconds(ttl_seconds)],
        )
        return bool(done)

    async def release(self, scope_key: str, token: str) -> bool:
        done = await self._release(keys=[self._prefix + scope_key], args=[token])
        return bool(done)

    async def close(self) -> None:
        await self._client.aclose()


def build_idempotency_store(redis_url: str | None) -> IdempotencyStore:
    """A Redis store when ``redis_url`` is given (shared by replicas), else a memory store."""
    if redis_url:
        return RedisIdempotencyStore(redis.asyncio.from_url(redis_url))
    return MemoryIdempotencyStore()
