"""Redaction: normalisation, the checks, what is caught, what is left alone."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from prompting.redaction import iban_valid, normalise, redact, redact_value

# --- normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain ascii\nkept\ttoo", "plain ascii\nkept\ttoo"),
        ("jo\u200bhn\u200d@ex\u2060ample.com", "john@example.com"),
        ("john\uff20example\uff0ecom", "john@example.com"),
        ("\uff14\uff11\uff11\uff11", "4111"),
        ("john\\u0040example.com", "john@example.com"),
        ("smile \\ud83d\\ude00", "smile \U0001f600"),
        ("lone \\ud800 escape", "lone \ufffd escape"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("\u0664\u0661\u0661\u0661", "4111"),
        ("nul\x00 esc\x1b[31m del\x7f", "nul esc[31m del"),
        ("soft\u00adhyphen, bidi \u202eevil\u202c", "softhyphen, bidi evil"),
        ("cgj j\u034fohn, tag \U000e0041", "cgj john, tag "),
    ],
    ids=[
        "ascii",
        "zero-width",
        "full-width-at",
        "full-width-digits",
        "json-escape",
        "json-surrogate-pair",
        "json-lone-surrogate",
        "lone-surrogate",
        "arabic-indic-digits",
        "controls",
        "format-characters",
        "default-ignorables",
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_normalise_removes_every_format_character() -> None:
    format_characters = "".join(
        chr(code) for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) == "Cf"
    )

    assert normalise(f"a{format_characters}b") == "ab"


# --- the checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "valid"),
    [
        ("DE89 3704 0044 0532 0130 00", True),
        ("DE89370400440532013000", True),
        ("gb82 west 1234 5698 7654 32", True),
        ("FR14 2004 1010 0505 0001 3M02 606", True),
        ("DE88 3704 0044 0532 0130 00", False),
        ("DE89 3704", False),
        ("1289 3704 0044 0532 0130 00", False),
    ],
    ids=[
        "de-spaced",
        "de-compact",
        "gb-lower-case",
        "fr-letters",
        "bad-check",
        "short",
        "no-country",
    ],
)
def test_iban_valid(candidate: str, valid: bool) -> None:
    assert iban_valid(candidate) is valid


# --- what is caught --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail john.doe+tag@example.co.uk now", "mail [EMAIL] now"),
        ("Jürgen.Müller@bücher.de", "[EMAIL]"),
        ("jo\u200bhn@example.com", "[EMAIL]"),
        ("john\uff20example.com", "[EMAIL]"),
        ('{"q": "john\\u0040example.com"}', '{"q": "[EMAIL]"}'),
        ("call +1 (415) 555-2671 today", "call [PHONE] today"),
        ("+442079460958", "[PHONE]"),
        ("+49 30 1234567.", "[PHONE]."),
        ("(415) 555-2671", "[PHONE]"),
        ("415-555-2671 or 415.555.2671", "[PHONE] or [PHONE]"),
        ("1-800-555-0199", "[PHONE]"),
        ("020 7946 0958", "[PHONE]"),
        ("06 12 34 56 78 / 06.12.34.56.78", "[PHONE] / [PHONE]"),
        ("0151-1234-5678", "[PHONE]"),
        ("phone: 4155552671", "phone: [PHONE]"),
        ("Tel. no. 030 1234567", "Tel. no. [PHONE]"),
        ("card 4111 1111 1111 1111, exp 12/29", "card [CARD], exp 12/29"),
        ("4111-1111-1111-1111", "[CARD]"),
        ("4111111111111111", "[CARD]"),
        ("amex 3782 822463 10005", "amex [CARD]"),
        ("qty 5 4111 1111 1111 1111 2029", "qty 5 [CARD] 2029"),
        ("\uff14\uff11\uff11\uff11 1111 1111 1111", "[CARD]"),
        ("IBAN DE89 3704 0044 0532 0130 00, thanks", "IBAN [IBAN], thanks"),
        ("GB82WEST12345698765432", "[IBAN]"),
        ("from 203.0.113.7:8080", "from [IP]:8080"),
        ("host 2001:db8::1, then 2001:db8::2.", "host [IP], then [IP]."),
        ("[fe80::1ff:fe23:4567:890a]:443", "[[IP]]:443"),
        ("::ffff:192.0.2.128", "[IP]"),
        ("sk-proj-Abc123def456ghi789jkl", "[SECRET]"),
        ("key=sk-ant-api03-abcdefghijklmnop0123", "key=[SECRET]"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[SECRET]"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "[SECRET]"),
        ("AKIAIOSFODNN7EXAMPLE", "[SECRET]"),
        ("xoxb-1234567890-abcdefghij", "[SECRET]"),
        ("Authorization: Bearer abc.def-123456789xyz", "Authorization: Bearer [SECRET]"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "[SECRET]",
        ),
        ('password="hunter2!" and api_key: abc123xyz', 'password="[SECRET]" and api_key: [SECRET]'),
        ("s\u200bk-proj-Abc123def456ghi789jkl", "[SECRET]"),
    ],
    ids=[
        "email",
        "email-unicode",
        "email-zero-width",
        "email-full-width-at",
        "email-json-escape",
        "phone-international-nanp",
        "phone-e164",
        "phone-international-end-of-sentence",
        "phone-nanp-parentheses",
        "phone-nanp-dash-dot",
        "phone-nanp-toll-free",
        "phone-uk",
        "phone-fr",
        "phone-de-dashes",
        "phone-after-keyword",
        "phone-after-tel-no",
        "card-spaced",
        "card-dashed",
        "card-compact",
        "card-amex",
        "card-between-numbers",
        "card-full-width",
        "iban-spaced",
        "iban-compact",
        "ipv4-port",
        "ipv6",
        "ipv6-bracketed",
        "ipv6-mapped-ipv4",
        "openai-key",
        "anthropic-key",
        "github-token",
        "github-pat",
        "aws-access-key",
        "slack-token",
        "bearer",
        "jwt",
        "assigned-secrets",
        "key-zero-width",
    ],
)
def test_redact_catches(text: str, expected: str) -> None:
    assert redact(text) == expected


# --- what is left alone ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "The kettle costs $4.95 (or €4,95), was $1,299.00.",
        "Delivered 2024-01-15, 15/01/2024, 01.02.2024, 05-06-2024 at 10:30:00.",
        "Order #123456789012 and order 48213, ref A-1234567.",
        "Upgrade from 1.2.3 to v10.4.12; see RFC 9110 and ISO 8601.",
        "4111 1111 1111 1112 fails the Luhn check; so does DE88370400440532013000.",
        "bearer bonds, the token economy, a secret: kindness, my password is long.",
        "task-1234567890123456 and desk-lamp",
        "C++ std::vector, Foo::bar, 12:30, a:b:c",
        "Call between 9-5, room 101, 3 x 4 = 12, pi is 3.14159.",
        "Meet at the hotel; tell Marcel about the excellent cellar.",
    ],
    ids=[
        "prices",
        "dates-and-times",
        "order-numbers",
        "versions",
        "invalid-card-and-iban",
        "keywords-without-secrets",
        "near-key-prefixes",
        "colons",
        "small-numbers",
        "phone-keyword-substrings",
    ],
)
def test_redact_leaves_benign_text(text: str) -> None:
    assert redact(text) == text


def test_redact_is_idempotent_on_its_tokens() -> None:
    text = "[EMAIL] [PHONE] [CARD] [IBAN] [IP] [SECRET] Bearer [SECRET]"

    assert redact(text) == text


def test_redact_value_keeps_shape_and_redacts_keys() -> None:
    value = {
        "email": "john@example.com",
        "nested": [("+44 20 7946 0958", 3), {"ip": "10.0.0.1"}],
        "count": 2,
        "ok": True,
        "none": None,
        "ratio": 0.5,
        "raw": b"card 4111111111111111 \xff",
        "john@example.com": "keys are redacted too",
        "jane@example.com": "and kept apart",
    }

    assert redact_value(value) == {
        "email": "[EMAIL]",
        "nested": [("[PHONE]", 3), {"ip": "[IP]"}],
        "count": 2,
        "ok": True,
        "none": None,
        "ratio": 0.5,
        "raw": "card [CARD] \ufffd",
        "[EMAIL]": "keys are redacted too",
        "[EMAIL]#2": "and kept apart",
    }


def test_redact_value_stringifies_other_objects() -> None:
    class Contact:
        def __str__(self) -> str:
            return "Contact(john@example.com)"

    assert redact_value(Contact()) == "Contact([EMAIL])"
    assert redact_value({"x", "y"}) in (["x", "y"], ["y", "x"])


# --- properties ------------------------------------------------------------------------

_INVISIBLES = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202e\u034f"


def _full_width(char: str) -> str:
    return chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char


def _json_escape(char: str) -> str:
    return f"\\u{ord(char):04x}"


@st.composite
def obfuscated(draw: st.DrawFn, text: str) -> str:
    """`text` with some characters hidden: zero-width inserts, full-width, JSON escapes."""
    out = []
    for char in text:
        trick = draw(st.sampled_from(["none", "none", "invisible", "full-width", "escape"]))
        if trick == "invisible":
            out.append(draw(st.sampled_from(_INVISIBLES)) + char)
        elif trick == "full-width":
            out.append(_full_width(char))
        elif trick == "escape":
            out.append(_json_escape(char))
        else:
            out.append(char)
    return "".join(out)


def _digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


@st.composite
def embedded(
    draw: st.DrawFn, pii: st.SearchStrategy[tuple[str, str]], *, digits: bool = False
) -> tuple[str, str]:
    """(text, needle): `pii`, maybe obfuscated, between random texts; needle must not survive.

    With `digits`, the needle is a digit string and the random texts hold none of it, even
    put together (what is left of the text's digits once the pii is redacted).
    """
    shown, needle = draw(pii)
    if draw(st.booleans()):
        shown = draw(obfuscated(shown))
    prefix = normalise(draw(st.text(max_size=40)))
    suffix = normalise(draw(st.text(max_size=40)))
    around = _digits(prefix + suffix) if digits else f"{prefix} {suffix}"
    assume(needle not in around)
    return f"{prefix} {shown} {suffix}", needle


_LOCAL = st.from_regex(r"[a-z][a-z0-9._+-]{4,18}[a-z0-9]", fullmatch=True)
_DOMAIN = st.from_regex(r"[a-z][a-z0-9-]{1,12}\.(com|org|io|co\.uk|de)", fullmatch=True)


@st.composite
def emails(draw: st.DrawFn) -> tuple[str, str]:
    local = draw(_LOCAL)
    return f"{local}@{draw(_DOMAIN)}", local


def _digit_string(size: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=size, max_size=size)


@st.composite
def phones(draw: st.DrawFn) -> tuple[str, str]:
    area, exchange, line = draw(_digit_string(3)), draw(_digit_string(3)), draw(_digit_string(4))
    pairs = [draw(_digit_string(2)) for _ in range(4)]
    country = draw(st.from_regex(r"[1-9][0-9]{0,2}", fullmatch=True))
    subscriber = draw(_digit_string(draw(st.integers(7, 10))))
    shapes = [
        f"+{country} {subscriber}",
        f"+{country} {subscriber[:3]} {subscriber[3:]}",
        f"+{country}{subscriber}",
        f"+{country} ({subscriber[:2]}) {subscriber[2:]}",
        f"({area}) {exchange}-{line}",
        f"{area}-{exchange}-{line}",
        f"{area}.{exchange}.{line}",
        f"1-{area}-{exchange}-{line}",
        f"0{area[:2]} {exchange}{line[0]} {line}",
        f"0{area[0]} {' '.join(pairs)}",
        f"0{area[0]}.{'.'.join(pairs)}",
        f"0{area}-{exchange}-{line}",
    ]
    shape = draw(st.sampled_from(shapes))
    return shape, _digits(shape)


def _luhn_valid(digits: str) -> bool:
    """The Luhn check, written plainly, to build card numbers the redactor must find."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


@st.composite
def cards(draw: st.DrawFn) -> tuple[str, str]:
    body = draw(st.sampled_from("23456")) + draw(_digit_string(draw(st.integers(11, 17))))
    check = next(str(d) for d in range(10) if _luhn_valid(f"{body}{d}"))
    number = body + check
    separator = draw(st.sampled_from(["", " ", "-"]))
    shown = separator.join(number[i : i + 4] for i in range(0, len(number), 4))
    return shown, number


_KEY_BODY = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=16, max_size=40
)


@st.composite
def keys(draw: st.DrawFn) -> tuple[str, str]:
    body = draw(_KEY_BODY) + draw(_digit_string(draw(st.integers(1, 6))))
    upper = re.sub(r"[^A-Z0-9]", "", body.upper()).ljust(16, "7")[:16]
    kind = draw(st.sampled_from(["openai", "github", "github-pat", "aws", "bearer", "jwt"]))
    if kind == "openai":
        return f"sk-proj-{body}", body
    if kind == "github":
        return f"ghp_{body}", body
    if kind == "github-pat":
        return f"github_pat_11{body}", body
    if kind == "aws":
        return f"AKIA{upper}", upper
    if kind == "bearer":
        return f"Authorization: Bearer {body}", body
    return f"eyJhbGciOiJIUzI1NiJ9.eyJ{body}.{body[::-1]}", body


@given(embedded(emails()))
def test_emails_never_survive(case: tuple[str, str]) -> None:
    text, local_part = case

    assert local_part not in redact(text)


@given(embedded(phones(), digits=True))
def test_phones_never_survive(case: tuple[str, str]) -> None:
    text, digits = case

    redacted = redact(text)

    assert digits not in _digits(redacted)
    assert "[PHONE]" in redacted or "[CARD]" in redacted or "[IP]" in redacted


@given(embedded(cards(), digits=True))
def test_cards_never_survive(case: tuple[str, str]) -> None:
    text, digits = case

    assert digits not in _digits(redact(text))


@given(embedded(keys()))
def test_keys_never_survive(case: tuple[str, str]) -> None:
    text, secret = case

    assert secret not in redact(text)


# --- benign text stays -----------------------------------------------------------------

#: Words include the keywords of secret patterns: they alone must not trigger redaction.
_WORDS = st.sampled_from(
    [
        *("the", "a", "refund", "policy", "covers", "damaged", "items", "within", "days"),
        *("order", "shipped", "on", "for", "version", "release", "price", "total", "costs"),
        *("kettle", "box", "store", "credit", "please", "thanks", "hotel", "excellent"),
        *("bearer", "token", "secret", "task", "api"),
    ]
)
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@st.composite
def benign_tokens(draw: st.DrawFn) -> str:
    date = draw(st.dates())
    number = draw(st.integers(0, 10**12 - 1))
    major, minor, patch = (draw(st.integers(0, 20)) for _ in range(3))
    return draw(
        st.sampled_from(
            [
                f"${draw(st.integers(0, 9999))}.{draw(st.integers(0, 99)):02d}",
                f"{draw(st.integers(0, 999)):,}.{draw(st.integers(0, 99)):02d} EUR",
                date.isoformat(),
                date.strftime("%d/%m/%Y"),
                date.strftime("%d.%m.%Y"),
                date.strftime("%m-%d-%Y"),
                f"{_MONTHS[date.month - 1]} {date.day}, {date.year}",
                f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}",
                f"#{number}",
                f"order {number}",
                f"A-{number}",
                ".".join(str(draw(st.integers(0, 99))) for _ in range(3)),
                f"v{major}.{minor}.{patch}",
                f"{draw(st.integers(0, 100))}%",
            ]
        )
    )


@given(st.lists(st.tuples(_WORDS, benign_tokens()), min_size=1, max_size=8))
def test_benign_text_is_left_intact(parts: list[tuple[str, str]]) -> None:
    text = " ".join(f"{word} {token}" for word, token in parts) + "."

    assert redact(text) == text
