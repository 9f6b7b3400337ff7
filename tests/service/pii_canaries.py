"""Hypothesis strategies for personal data and secrets in disguise, and a leak detector.

Each canary has a random *marker* (the part that identifies someone: the local part of
an e-mail, the digits of a card, the body of a token). A canary survives when its marker
is found in some output string after undoing every disguise independently of the code
under test (:func:`compact`: percent-decoding, NFKC, invisible characters and
separators removed, case folded).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from hypothesis import strategies as st

__all__ = ["Canary", "canaries", "compact", "leaked"]

ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")


@dataclass(frozen=True)
class Canary:
    """A disguised piece of personal data: `text` as sent, `marker` as searched for."""

    kind: str
    text: str
    marker: str


def compact(text: str) -> str:
    """`text` with disguises undone and separators dropped, case folded (for searching)."""
    for _ in range(3):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc", "Zs"))
    return re.sub(r"[\s._\-/()+]", "", text).casefold()


def leaked(canary: Canary, outputs: Iterable[str]) -> list[str]:
    """The outputs in which `canary`'s marker is still readable."""
    marker = compact(canary.marker)
    return [output for output in outputs if marker in compact(output)]


# --- Disguises --------------------------------------------------------------------------


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@st.composite
def _disguised(draw: st.DrawFn, text: str) -> str:
    """`text` as is, full-width, with zero-width characters inside, or percent-encoded."""
    how = draw(st.sampled_from(["plain", "full-width", "zero-width", "percent", "mixed"]))
    if how == "full-width":
        return _full_width(text)
    if how == "percent":
        return quote(text, safe="")
    if how in ("zero-width", "mixed"):
        invisible = draw(st.sampled_from(ZERO_WIDTH))
        step = draw(st.integers(2, 5))
        text = invisible.join(text[i : i + step] for i in range(0, len(text), step))
    if how == "mixed":
        text = _full_width(text)
    return text


def _grouped(digits: str, separator: str, size: int = 4) -> str:
    return separator.join(digits[i : i + size] for i in range(0, len(digits), size))


_SEPARATORS = st.sampled_from(["", " ", "-", ".", "_", "  ", " - "])


# --- Canaries ---------------------------------------------------------------------------

_LOWER = st.text(string.ascii_lowercase, min_size=8, max_size=12)


@st.composite
def _email(draw: st.DrawFn) -> Canary:
    local = draw(_LOWER)
    host = draw(st.sampled_from(["example.com", "mail.example.org", "corp.example.co.uk"]))
    at = draw(st.sampled_from(["@", " @ ", "\uff20", "%40"]))
    return Canary("email", draw(_disguised(f"{local}{at}{host}")), local)


def _luhn_digit(body: str) -> str:
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


@st.composite
def _card(draw: st.DrawFn) -> Canary:
    prefix = draw(st.sampled_from(["4", "51", "37", "6011"]))
    length = 15 if prefix == "37" else 16
    body = prefix + draw(st.text("0123456789", min_size=length - len(prefix) - 1, max_size=14))
    body = body[: length - 1]
    digits = body + _luhn_digit(body)
    text = _grouped(digits, draw(_SEPARATORS))
    return Canary("card", draw(_disguised(text)), digits)


def _iban_check(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{98 - number % 97:02d}"


@st.composite
def _iban(draw: st.DrawFn) -> Canary:
    country, length = draw(st.sampled_from([("DE", 18), ("FR", 23), ("NL", 14), ("GB", 18)]))
    if country in ("NL", "GB"):
        bban = draw(st.text(string.ascii_uppercase, min_size=4, max_size=4)) + draw(
            st.text("0123456789", min_size=length - 4, max_size=length - 4)
        )
    else:
        bban = draw(st.text("0123456789", min_size=length, max_size=length))
    iban = country + _iban_check(country, bban) + bban
    text = _grouped(iban, draw(st.sampled_from(["", " ", "-"])))
    if draw(st.booleans()):
        text = text.lower()
    return Canary("iban", draw(_disguised(text)), iban)


@st.composite
def _phone(draw: st.DrawFn) -> Canary:
    last = draw(st.text("0123456789", min_size=4, max_size=4))
    sep = draw(st.sampled_from([" ", "-", ".", ""]))
    text, digits = draw(
        st.sampled_from(
            [
                (f"+44{sep}20{sep}7946{sep}{last[:2]}{last[2:]}", f"44207946{last}"),
                (f"+1{sep}415{sep}555{sep}{last}", f"1415555{last}"),
                (f"(212) 555-{last}", f"212555{last}"),
                (f"+33{sep}6{sep}12{sep}34{sep}{last[:2]}{sep}{last[2:]}", f"3361234{last}"),
                (f"+49{sep}30{sep}9012{sep}{last}", f"49309012{last}"),
            ]
        )
    )
    return Canary("phone", draw(_disguised(text)), digits)


_ALNUM = string.ascii_letters + string.digits


@st.composite
def _token(draw: st.DrawFn) -> Canary:
    kind = draw(st.sampled_from(["ghp", "hf", "xoxb", "aws", "jwt", "pem"]))
    body = draw(st.text(_ALNUM, min_size=36, max_size=36))
    # A token body always has a digit, a lower- and an upper-case letter, as real ones do.
    body = "aZ7" + body[3:]
    if kind == "ghp":
        text, marker = f"ghp_{body}", body
    elif kind == "hf":
        text, marker = f"hf_{body[:34]}", body[:34]
    elif kind == "xoxb":
        text, marker = f"xoxb-1234567890-{body[:24]}", body[:24]
    elif kind == "aws":
        text = marker = (body + "/+Kx")[:40]
    elif kind == "jwt":
        text, marker = f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI{body[:20]}.{body[20:]}", body[20:]
    else:
        text, marker = f"-----BEGIN PRIVATE KEY-----\nMIIE{body}\n-----END PRIVATE KEY-----", body
    return Canary(kind, draw(_disguised(text)) if kind != "pem" else text, marker)


def canaries() -> st.SearchStrategy[Canary]:
    """Any disguised canary."""
    return st.one_of(_email(), _card(), _iban(), _phone(), _token())
