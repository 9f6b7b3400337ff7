"""Undoing disguises before redaction (pure): percent-encoding, HTML numeric entities,
JSON escapes, NFKC, digits of other scripts, invisible characters.

:func:`decode_disguises` and :func:`normalise` give the text that the patterns of
:mod:`prompting.pii_patterns` see; :mod:`prompting.redaction` applies them in order.
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import unquote

__all__ = ["PERCENT_ESCAPE", "QUERY_STRING", "decode_disguises", "normalise", "plus_as_space"]

#: Runs of JSON escapes, decoded together so surrogate pairs combine.
_JSON_ESCAPES = re.compile(r"(?:\\u[0-9a-fA-F]{4})+")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Digits of other scripts (NFKC leaves e.g. Arabic-Indic digits alone).
_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")
#: Removed before matching: C0/C1 controls (but tab, LF, CR), every format character
#: (category Cf, Unicode 16) and the other default-ignorable code points (combining
#: grapheme joiner, Hangul fillers, variation selectors, tags).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def _decode_escapes(match: re.Match[str]) -> str:
    escapes = match.group()
    units = "".join(chr(int(escapes[i + 2 : i + 6], 16)) for i in range(0, len(escapes), 6))
    # UTF-16 round trip: pairs combine, lone surrogates become U+FFFD.
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _ascii_digit(match: re.Match[str]) -> str:
    return str(unicodedata.digit(match.group(), 0))


#: A percent-encoded byte; runs of them are decoded together (UTF-8 sequences).
PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_NUMERIC_ENTITY = re.compile(r"&#(?:[0-9]{1,7}|[xX][0-9A-Fa-f]{1,6});")
#: Rounds of percent-decoding: ``%2540`` is ``%40`` is ``@``.
_PERCENT_ROUNDS = 3


#: A URL's query string, where ``+`` stands for a space (form encoding)...
QUERY_STRING = re.compile(r"\?[^\s\"'#<>]+")
#: ...but not at the start of a name or value, where it is more likely a phone's ``+``.
_FORM_PLUS = re.compile(r"(?<![=&?;])\+")


def plus_as_space(match: re.Match[str]) -> str:
    """A query string's form-encoded ``+`` as spaces (not one that starts a value)."""
    return _FORM_PLUS.sub(" ", match.group())


def decode_disguises(text: str) -> str:
    """`text` with percent-encoding (up to three layers) and numeric HTML entities decoded."""
    for _ in range(_PERCENT_ROUNDS):
        if "%" not in text or not PERCENT_ESCAPE.search(text):
            break
        text = unquote(text, errors="replace")
    if "&#" in text:
        text = _NUMERIC_ENTITY.sub(lambda m: html.unescape(m.group()), text)
    return text


def normalise(text: str) -> str:
    """`text` as the redaction patterns see it: escapes decoded, NFKC, invisibles removed."""
    if "\\u" in text:
        text = _JSON_ESCAPES.sub(_decode_escapes, text)
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
        text = unicodedata.normalize("NFKC", text)
        text = _NON_ASCII_DIGIT.sub(_ascii_digit, text)
    return _INVISIBLE.sub("", text)
