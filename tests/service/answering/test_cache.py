"""The response cache: what its key depends on, expiry on a fake clock, and the LRU bound."""

from __future__ import annotations

from dataclasses import replace

import pytest

from prompting.rendering import Message
from service.answering.cache import ResponseCache, build_cache_key
from service.llm.chat import ChatRequest, ChatResponse

REQUEST = ChatRequest(
    model="gpt-small",
    messages=[Message("system", "Answer from the context."), Message("user", "Refunds?")],
    temperature=0.0,
    max_tokens=200,
    timeout_seconds=30.0,
    question="Refunds?",
)
KEY = build_cache_key("refunds", "1.0.0", REQUEST)


def reply(text: str) -> ChatResponse:
    return ChatResponse(text=text, model="gpt-small", input_tokens=3, output_tokens=4)


@pytest.mark.parametrize(
    ("prompt", "version", "request_"),
    [
        ("returns", "1.0.0", REQUEST),
        ("refunds", "1.0.1", REQUEST),
        ("refunds", "1.0.0", replace(REQUEST, model="gpt-large")),
        ("refunds", "1.0.0", replace(REQUEST, temperature=0.7)),
        ("refunds", "1.0.0", replace(REQUEST, max_tokens=201)),
        ("refunds", "1.0.0", replace(REQUEST, fallbacks=("gpt-large",))),
        (
            "refunds",
            "1.0.0",
            replace(REQUEST, messages=[Message("system", "Answer briefly."), REQUEST.messages[1]]),
        ),
        (
            "refunds",
            "1.0.0",
            replace(REQUEST, messages=[REQUEST.messages[0], Message("user", "Refunds!")]),
        ),
        (
            "refunds",
            "1.0.0",
            replace(REQUEST, messages=[REQUEST.messages[0], Message("assistant", "Refunds?")]),
        ),
        ("refunds", "1.0.0", replace(REQUEST, messages=REQUEST.messages[::-1])),
        ("refunds", "1.0.0", replace(REQUEST, messages=REQUEST.messages[:1])),
        ("refunds", "1.0.0", replace(REQUEST, messages=[*REQUEST.messages, REQUEST.messages[1]])),
    ],
    ids=[
        "prompt",
        "version",
        "model",
        "temperature",
        "max-tokens",
        "fallbacks",
        "system-message",
        "user-message",
        "message-role",
        "message-order",
        "message-dropped",
        "message-added",
    ],
)
def test_cache_key_changes_with(prompt: str, version: str, request_: ChatRequest) -> None:
    assert build_cache_key(prompt, version, request_) != KEY


@pytest.mark.parametrize(
    "request_",
    [
        REQUEST,
        replace(REQUEST, timeout_seconds=5.0),
        replace(REQUEST, question="Something else"),
        replace(REQUEST, user="alice"),
        replace(REQUEST, idempotency_key="abc"),
        replace(REQUEST, messages=[Message(m.role, m.content) for m in REQUEST.messages]),
    ],
    ids=["same", "timeout", "question", "user", "idempotency-key", "equal-messages"],
)
def test_cache_key_is_stable_otherwise(request_: ChatRequest) -> None:
    key = build_cache_key("refunds", "1.0.0", request_)
    assert key == KEY
    assert len(key) == 64
    assert int(key, 16) >= 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("ttl", "after", "hit"),
    [
        (10.0, 0.0, True),
        (10.0, 9.99, True),
        (10.0, 10.0, False),
        (10.0, 60.0, False),
        (0.0, 0.0, False),
    ],
    ids=["fresh", "just-before-expiry", "at-expiry", "long-expired", "zero-ttl"],
)
def test_entries_expire_after_their_ttl(ttl: float, after: float, hit: bool) -> None:
    clock = FakeClock()
    cache = ResponseCache(clock=clock)
    cache.put("k", reply("a"), ttl)
    clock.now += after
    assert (cache.get("k") is not None) is hit


def test_miss_and_replacement() -> None:
    clock = FakeClock()
    cache = ResponseCache(clock=clock)
    assert cache.get("missing") is None
    cache.put("k", reply("a"), 10.0)
    clock.now += 8.0
    cache.put("k", reply("b"), 10.0)
    clock.now += 8.0
    assert cache.get("k") == reply("b"), "a new put restarts the TTL and replaces the reply"
    clock.now += 2.0
    assert cache.get("k") is None


def test_expired_entry_is_gone_even_if_the_clock_went_back() -> None:
    clock = FakeClock()
    cache = ResponseCache(clock=clock)
    cache.put("k", reply("a"), 1.0)
    clock.now += 5.0
    assert cache.get("k") is None
    clock.now -= 5.0
    assert cache.get("k") is None, "an expired read removes the entry"


@pytest.mark.parametrize(
    ("ops", "present"),
    [
        (["put a", "put b", "put c"], {"a", "b", "c"}),
        (["put a", "put b", "put c", "put d"], {"b", "c", "d"}),
        (["put a", "put b", "put c", "get a", "put d"], {"a", "c", "d"}),
        (["put a", "put b", "put c", "put a", "put d"], {"a", "c", "d"}),
        (["put a", "put b", "put c", "get z", "put d", "put e"], {"c", "d", "e"}),
    ],
    ids=["under-bound", "oldest-evicted", "read-refreshes", "rewrite-refreshes", "miss-is-no-use"],
)
def test_lru_bound(ops: list[str], present: set[str]) -> None:
    cache = ResponseCache(max_entries=3, clock=FakeClock())
    for op in ops:
        verb, key = op.split()
        if verb == "put":
            cache.put(key, reply(key), 60.0)
        else:
            cache.get(key)
    assert {key for key in "abcdez" if cache.get(key) is not None} == present
