"""Redaction of personal data and secrets from text bound for logs and spans (pure).

``redact(text)`` first undoes disguises: percent-encoding (``%40``, twice-encoded
``%2540``, as in URLs and query strings) and HTML numeric entities are decoded, then
``normalise``: JSON ``\\uXXXX`` escapes decoded, lone surrogates replaced by U+FFFD,
NFKC (the full-width at sign U+FF20 becomes ``@``), digits of any script made ASCII,
invisible characters (format characters such as zero-width spaces, other
default-ignorable code points, C0/C1 controls but tab and newlines) removed. It then
replaces, in this order:

- PEM blocks, API keys and tokens (``_PEM``, ``_PREFIXED_SECRET``, ``_AWS_SECRET``,
  ``_BEARER``, ``_ASSIGNED_SECRET``): ``[SECRET]``
- e-mail addresses, also ``name @ host`` and ``name [at] host``: ``[EMAIL]``
- IBANs in any case, grouped by spaces or dashes, with a valid country format and
  mod-97 check (``python-stdnum``): ``[IBAN]``
- card numbers, grouped by spaces, dots, dashes or underscores (one to three of them),
  passing the Luhn check: ``[CARD]``
- IPv6 and IPv4 addresses but loopback and unspecified ones (``127.0.0.1``, ``::1``,
  ``0.0.0.0``: a listener's address names no one): ``[IP]``
- phone numbers (``_PHONE_*`` patterns, then ``phonenumbers`` on trunk-prefixed
  candidates the patterns left): ``[PHONE]``

The output is the decoded, normalised text with those replacements; it is meant for
logs, not for showing back to users. Each pass is one precompiled regular expression,
skipped when a cheap test (an ``@``, a digit, two colons, a keyword) shows it cannot
match; the costly checks (``phonenumbers``, ``python-stdnum``) only see candidates.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from prompting.normalisation import (
    PERCENT_ESCAPE,
    QUERY_STRING,
    decode_disguises,
    normalise,
    plus_as_space,
)
from prompting.pii_checks import iban_valid
from prompting.pii_patterns import replace_personal_data

__all__ = [
    "decode_disguises",
    "iban_valid",
    "normalise",
    "redact",
    "redact_key",
    "redact_value",
]


def redact(text: str) -> str:
    """`text` decoded and normalised, personal data and secrets replaced by ``[EMAIL]``…"""
    text = normalise(decode_disguises(text))
    if "%" in text and PERCENT_ESCAPE.search(text):  # full-width percent signs are ``%`` after NFKC
        text = normalise(decode_disguises(text))
    text = replace_personal_data(text)
    if "?" in text and "+" in text:
        # A query string's ``+`` may be a form-encoded space (``jane+@+example.com``) or
        # itself (``%2B44``, base64): both readings are redacted, one after the other.
        spaced = QUERY_STRING.sub(plus_as_space, text)
        if spaced != text:
            text = replace_personal_data(spaced)
    return text


@functools.lru_cache(maxsize=4096)
def redact_key(key: str) -> str:
    """`redact` for names (mapping keys, attribute keys): cached, since names repeat."""
    return redact(key)


def _redact_keys(mapping: Mapping[object, object]) -> dict[object, object]:
    """`mapping` with keys and values redacted; keys that redact alike get ``#2``, ``#3``."""
    redacted: dict[object, object] = {}
    for key, item in mapping.items():
        name: object = redact_key(key) if isinstance(key, str) else key
        if name in redacted:
            suffix = 2
            while f"{name}#{suffix}" in redacted:
                suffix += 1
            name = f"{name}#{suffix}"
        redacted[name] = redact_value(item)
    return redacted


def redact_value(value: object) -> object:
    """`value` with every string in it redacted; mappings, lists and tuples keep their shape.

    Mapping keys are redacted too (a variable name can be an e-mail address). Numbers,
    booleans and None pass through; bytes are decoded (invalid bytes replaced) and any
    other object is logged as its redacted ``str``.
    """
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return _redact_keys(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = [redact_value(item) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, bytes | bytearray):
        return redact(bytes(value).decode("utf-8", "replace"))
    return redact(str(value))
