"""An in-process TTL cache of model replies, keyed by everything that shapes the reply."""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable

from service.llm.chat import ChatRequest, ChatResponse

__all__ = ["ResponseCache", "build_cache_key"]


def build_cache_key(prompt: str, version: str, request: ChatRequest) -> str:
    """sha256 of prompt version, rendered messages and model parameters (pure)."""
    material = {
        "prompt": prompt,
        "version": version,
        "model": request.model,
        "fallbacks": list(request.fallbacks),
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "messages": [[m.role, m.content] for m in request.messages],
    }
    encoded = json.dumps(material, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()


class ResponseCache:
    """Bounded LRU with per-entry expiry; one per process."""

    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[str, tuple[float, ChatResponse]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock

    def get(self, key: str) -> ChatResponse | None:
        """The cached reply, if present and fresh."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, response = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return response

    def put(self, key: str, response: ChatResponse, ttl_seconds: float) -> None:
        """Keep `response` for `ttl_seconds`."""
        self._entries[key] = (self._clock() + ttl_seconds, response)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
