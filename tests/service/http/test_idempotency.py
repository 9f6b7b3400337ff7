"""Pure Idempotency-Key rules: key validation, body fingerprints, scope keys, stored responses."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import IdempotencyKeyInvalidError
from service.http.idempotency_keys import (
    MAX_KEY_LENGTH,
    StoredResponse,
    build_fingerprint,
    build_scope_key,
    build_upstream_key,
    validate_key,
)

# --- validate_key -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "8e03978e-40d5-43e8-bc93-6894a57f9324",
        "!~",
        "".join(chr(code) for code in range(0x21, 0x7F)),
        "k" * MAX_KEY_LENGTH,
    ],
    ids=["one-char", "uuid", "edges-of-range", "every-allowed-char", "255-chars"],
)
def test_valid_keys_are_returned_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("", "empty"),
        ("k" * (MAX_KEY_LENGTH + 1), "too-long"),
        ("abc def", "charset"),
        (" abc", "charset"),
        ("abc\t", "charset"),
        ("abc\n", "charset"),
        ("abc\r\nX-Injected: 1", "charset"),
        ("abc\x00", "charset"),
        ("abc\x7f", "charset"),
        ("abc\x1b", "charset"),
        ("clé", "charset"),
        ("key\u200b", "charset"),
        ("ｋｅｙ", "charset"),
        ("🔑", "charset"),
    ],
    ids=[
        "empty",
        "256-chars",
        "inner-space",
        "leading-space",
        "tab",
        "newline",
        "header-injection",
        "nul",
        "del",
        "escape",
        "latin-1",
        "zero-width-space",
        "full-width",
        "emoji",
    ],
)
def test_invalid_keys_raise_naming_the_rule(key: str, rule: str) -> None:
    with pytest.raises(IdempotencyKeyInvalidError) as raised:
        validate_key(key)
    assert raised.value.rule == rule
    assert str(raised.value).startswith("Idempotency-Key must")


def test_the_charset_error_does_not_echo_the_key() -> None:
    with pytest.raises(IdempotencyKeyInvalidError) as raised:
        validate_key("secret\nvalue")
    assert "secret" not in str(raised.value)
    assert "character 7 is U+000A" in str(raised.value)


# --- build_fingerprint --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (b'{"question":"q","k":3}', b'{"k":3,"question":"q"}'),
        (b'{"a":1}', b'  {\n  "a" : 1\n}\n'),
        (b'{"a":{"y":1,"x":2}}', b'{"a":{"x":2,"y":1}}'),
        (b'{"q":"caf\\u00e9"}', '{"q":"café"}'.encode()),
        (b"not json", b"not json"),
    ],
    ids=["key-order", "whitespace", "nested-key-order", "unicode-escapes", "raw-bytes"],
)
def test_equivalent_bodies_share_a_fingerprint(first: bytes, second: bytes) -> None:
    assert build_fingerprint(first) == build_fingerprint(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (b'{"question":"q"}', b'{"question":"Q"}'),
        (b'{"k":3}', b'{"k":"3"}'),
        (b'{"k":1}', b'{"k":1.5}'),
        (b"[1,2]", b"[2,1]"),
        (b'{"a":1}', b'{"a":1,"b":null}'),
        (b"not json", b"not  json"),
        (b"", b"{}"),
        (b'"x"', b"x"),
    ],
    ids=[
        "value-case",
        "number-vs-string",
        "int-vs-float",
        "list-order",
        "extra-null-field",
        "raw-whitespace",
        "empty-vs-object",
        "json-string-vs-raw",
    ],
)
def test_different_bodies_have_different_fingerprints(first: bytes, second: bytes) -> None:
    assert build_fingerprint(first) != build_fingerprint(second)


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\x00garbage", b"[" * 100_000, b"{"],
    ids=["not-utf8", "nested-too-deep", "truncated-json"],
)
def test_unparseable_bodies_fall_back_to_the_raw_bytes(body: bytes) -> None:
    assert build_fingerprint(body).startswith("raw:")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@given(_json_values)
def test_fingerprint_ignores_formatting(value: object) -> None:
    compact = json.dumps(value, separators=(",", ":")).encode()
    pretty = json.dumps(value, indent=3, sort_keys=True, ensure_ascii=False).encode()
    assert build_fingerprint(compact) == build_fingerprint(pretty)


# --- build_scope_key ----------------------------------------------------------------------


def test_scope_keys_differ_per_identity_and_per_key() -> None:
    scopes = {
        build_scope_key("client-a", "k1"),
        build_scope_key("client-b", "k1"),
        build_scope_key(None, "k1"),
        build_scope_key("client-a", "k2"),
    }
    assert len(scopes) == 4
    assert build_scope_key("client-a", "k1") == build_scope_key("client-a", "k1")


@pytest.mark.parametrize(
    "identity",
    ["sk-live-0123456789abcdef", "alice@example.com", "anonymous", "x"],
    ids=["api-key", "email", "literal-anonymous", "short"],
)
def test_scope_keys_never_contain_the_identity(identity: str) -> None:
    scope = build_scope_key(identity, "k")
    assert identity not in scope
    assert scope != build_scope_key(None, "k")


def test_anonymous_scope_is_named() -> None:
    assert build_scope_key(None, "k") == "anonymous:k"


def test_scope_key_validates_the_key() -> None:
    with pytest.raises(IdempotencyKeyInvalidError):
        build_scope_key("client", "bad key")


# --- fingerprint context and upstream keys --------------------------------------------------


def test_fingerprint_covers_the_pinned_version_and_the_tenant() -> None:
    body = b'{"prompt":"p","question":"q"}'
    prints = {
        build_fingerprint(body),
        build_fingerprint(body, pinned_version="1.0.0"),
        build_fingerprint(body, pinned_version="1.1.0"),
        build_fingerprint(body, tenant="shop"),
        build_fingerprint(body, tenant="bank"),
        build_fingerprint(body, pinned_version="1.0.0", tenant="shop"),
    }
    assert len(prints) == 6
    assert build_fingerprint(body, tenant="shop") == build_fingerprint(
        b'{ "question": "q", "prompt": "p" }', tenant="shop"
    )


def test_upstream_key_is_an_hmac_of_the_scope_key() -> None:
    shop = build_scope_key("key:shop-web", "same")
    bank = build_scope_key("key:bank-web", "same")
    derived = build_upstream_key(b"secret", shop)
    assert derived == build_upstream_key(b"secret", shop)  # stable across replicas
    assert derived != build_upstream_key(b"secret", bank)  # no collision between tenants
    assert derived != build_upstream_key(b"other-install", shop)
    assert "same" not in derived and len(derived) == 64
    with pytest.raises(ValueError, match="empty"):
        build_upstream_key(b"", shop)


# --- StoredResponse -----------------------------------------------------------------------


def test_stored_response_round_trips_through_json() -> None:
    response = StoredResponse(
        status=201,
        headers=(("content-type", "application/json"), ("x-prompt-version", "1.1.0")),
        body=b'{"answer":"caf\xc3\xa9"}\x00\xff',
    )
    text = response.to_json()
    json.loads(text)  # plain JSON, body as base64
    assert StoredResponse.from_json(text) == response
    assert StoredResponse.from_json(text.encode()) == response
