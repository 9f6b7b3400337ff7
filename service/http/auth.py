"""API keys: the keys file, constant-time lookup, per-prompt permissions, hot reload.

``API_KEYS_FILE`` is a YAML list; only SHA-256 hashes of keys are stored::

    - id: shop-web            # names the key in logs and idempotency scopes
      sha256: 9f86d081...     # hex SHA-256 of the key (`promptctl keys create` prints it)
      tenant: shop            # quotas and logs are per tenant
      prompts: ["*"]          # prompt names this key may use, or "*" for all

Pure parts (:func:`build_keyring`, :func:`hash_key`, :meth:`KeyRing.authenticate`,
:func:`decide_prompt_allowed`) are separate from the file watcher
(:class:`KeyFile`, :func:`watch_key_file`), which keeps the last good set when the file
turns bad and says why in the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ANONYMOUS_TENANT",
    "ApiKey",
    "Caller",
    "KeyFile",
    "KeyFileError",
    "KeyRing",
    "build_keyring",
    "decide_prompt_allowed",
    "hash_key",
    "watch_key_file",
]

_log = logging.getLogger(__name__)

#: The tenant of every caller when AUTH_MODE=none.
ANONYMOUS_TENANT = "anonymous"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_FIELDS = frozenset({"id", "sha256", "tenant", "prompts"})


class KeyFileError(ValueError):
    """API_KEYS_FILE cannot be read or breaks a rule; the message says where."""


@dataclass(frozen=True)
class ApiKey:
    """One entry of the keys file."""

    id: str
    sha256: str
    tenant: str
    prompts: frozenset[str]


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the key's id (None when unauthenticated), tenant and prompts.

    ``scope`` owns Idempotency-Keys: ``key:<id>`` with a key, otherwise the hash of the
    Authorization header or the client address (AUTH_MODE=none).
    """

    key_id: str | None
    tenant: str
    prompts: frozenset[str]
    scope: str


def hash_key(key: str) -> str:
    """The hex SHA-256 stored in the keys file for ``key`` (pure)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def decide_prompt_allowed(allowed: frozenset[str], prompt: str) -> bool:
    """Whether a key listing ``allowed`` prompt names may use ``prompt`` (pure)."""
    return "*" in allowed or prompt in allowed


class KeyRing:
    """The keys of one version of the file, looked up in constant time per entry."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self.keys = tuple(keys)
        self._digests = tuple((bytes.fromhex(k.sha256), k) for k in self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def authenticate(self, token: str) -> ApiKey | None:
        """The key whose hash matches ``token``, or None.

        Every entry is compared with :func:`hmac.compare_digest`, whether or not an earlier
        one matched, so the time taken says nothing about which hashes are close.
        """
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found: ApiKey | None = None
        for stored, key in self._digests:
            if hmac.compare_digest(stored, digest) and found is None:
                found = key
        return found


def _entry(index: int, raw: Any) -> ApiKey:
    where = f"entry {index + 1}"
    if not isinstance(raw, dict):
        raise KeyFileError(f"{where}: expected a mapping with id, sha256, tenant, prompts")
    unknown = sorted(set(map(str, raw)) - _FIELDS)
    missing = sorted(_FIELDS - set(map(str, raw)))
    if unknown:
        raise KeyFileError(f"{where}: unknown field(s) {', '.join(unknown)}")
    if missing:
        raise KeyFileError(f"{where}: missing field(s) {', '.join(missing)}")
    key_id, digest, tenant, prompts = raw["id"], raw["sha256"], raw["tenant"], raw["prompts"]
    for field, value in (("id", key_id), ("tenant", tenant)):
        if not isinstance(value, str) or not _NAME.match(value):
            raise KeyFileError(
                f"{where}: {field} must be 1-63 letters, digits, '.', '_' or '-' "
                "(starting with a letter or digit)"
            )
    if not isinstance(digest, str) or not _SHA256_HEX.match(digest):
        raise KeyFileError(
            f"{where} ({key_id}): sha256 must be 64 lower-case hex digits (the hash of the "
            "key, never the key itself)"
        )
    if (
        not isinstance(prompts, list)
        or not prompts
        or not all(isinstance(p, str) and p for p in prompts)
    ):
        raise KeyFileError(f'{where} ({key_id}): prompts must be a non-empty list of names or "*"')
    return ApiKey(key_id, digest, tenant, frozenset(prompts))


def build_keyring(text: str) -> KeyRing:
    """Parse the keys file's text; raises KeyFileError naming the first problem (pure)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise KeyFileError(f"not valid YAML: {error}") from error
    if data is None:
        data = []
    if not isinstance(data, list):
        raise KeyFileError("expected a YAML list of keys")
    keys = [_entry(index, raw) for index, raw in enumerate(data)]
    for attribute in ("id", "sha256"):
        seen: set[str] = set()
        for key in keys:
            value = getattr(key, attribute)
            if value in seen:
                label = key.id if attribute == "sha256" else value
                raise KeyFileError(f"duplicate {attribute} ({label})")
            seen.add(value)
    return KeyRing(keys)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class KeyFile:
    """The current key ring of API_KEYS_FILE; :meth:`refresh` re-reads it if it changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = _stamp(path)
        self.ring = self._read()  # at start-up a broken file is fatal: there is no good set

    def _read(self) -> KeyRing:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise KeyFileError(f"{self.path}: cannot read: {type(error).__name__}") from error
        try:
            return build_keyring(text)
        except KeyFileError as error:
            raise KeyFileError(f"{self.path}: {error}") from error

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when a new set was loaded.

        A broken or missing file keeps the last good set and logs why (once per change).
        """
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            ring = self._read()
        except KeyFileError as error:
            _log.error("API keys file not reloaded, keeping the last good set: %s", error)
            return False
        self.ring = ring
        _log.info("API keys file reloaded: %d keys", len(ring))
        return True


async def watch_key_file(keys: KeyFile, interval: float) -> None:
    """Refresh ``keys`` every ``interval`` seconds (runs until cancelled)."""
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(keys.refresh)
