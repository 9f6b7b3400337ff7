"""Redaction of disguised personal data (issue 9 §4), and what must stay readable."""

from __future__ import annotations

import pytest

from prompting.redaction import decode_disguises, iban_valid, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # e-mail addresses, spaced, spelled out, encoded
        ("write to jane @ example.com today", "write to [EMAIL] today"),
        ("jane [at] example [dot] com", "[EMAIL]"),
        ("jane(at)example.com", "[EMAIL]"),
        ("jane%40example.com", "[EMAIL]"),
        ("jane%2540example.com", "[EMAIL]"),
        ("jane&#64;example.com", "[EMAIL]"),
        ("\uff4a\uff41\uff4e\uff45\uff05\uff14\uff10example.com", "[EMAIL]"),
        ("/v1/answers?email=jane+@+example.com", "/v1/answers?email=[EMAIL]"),
        # cards with any separators
        ("4111.1111.1111.1111", "[CARD]"),
        ("4111_1111_1111_1111", "[CARD]"),
        ("4111  1111  1111  1111", "[CARD]"),
        ("4111 - 1111 - 1111 - 1111", "[CARD]"),
        ("card=4111%201111%201111%201111", "card=[CARD]"),
        # IBANs in any case, with dashes
        ("gb82west12345698765432", "[IBAN]"),
        ("GB82-WEST-1234-5698-7654-32", "[IBAN]"),
        ("de89 3704 0044 0532 0130 00", "[IBAN]"),
        # phones through phonenumbers (trunk prefix, odd separators)
        ("call 030/901820", "call [PHONE]"),
        ("call 07700900123", "call [PHONE]"),
        ("tel +44 20 7946 0958", "tel [PHONE]"),
        ("?phone=%2B44%2020%207946%200958", "?phone=[PHONE]"),
        ("?phone=%2B44+20+7946+0958", "?phone=[PHONE]"),
        # secrets
        ("hf_aZ7abcdefghijklmnopqrstuvwxyz0123", "[SECRET]"),
        ("xoxe-1-abcdefghij1234", "[SECRET]"),
        ("xapp-1-A0123456789-abcdef", "[SECRET]"),
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "[SECRET]"),
        ("/keys/wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "/keys/[SECRET]"),
        ("?k=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY&x=1", "?k=[SECRET]&x=1"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEab\n-----END RSA PRIVATE KEY----- ok",
            "[SECRET] ok",
        ),
        ("cut -----BEGIN PRIVATE KEY-----\nMIIEab", "cut [SECRET]"),
        ("t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig", "t=[SECRET]"),
        ("gh\u200bp_aZ7abcdefghijklmnopqrstuvwxyz0123456", "[SECRET]"),
    ],
)
def test_disguised_data_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)",
        "Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)",
        "listening on [::1]:8000",
        "serving policy-qa 1.2.0: Stable at 100%",
        "prompt-rollouts 0.1.0, qdrant-client 1.20.0, python 3.11.9",
        "date 2026-12-03, 01012024, 03.12.2026",
        "pi is 3.14159265358979, total 1234567.89 EUR",
        "sha1 0123456789abcdef0123456789abcdef01234567",
        "request 1f2e3d4c5b6a79881f2e3d4c5b6a7988",
        "order 4155552671 shipped",
        "50% off, 100%, %zz",
        "/v1/answers?prompt=policy-qa&tone=formal",
    ],
)
def test_what_is_not_personal_survives(text: str) -> None:
    assert redact(text) == text


def test_other_client_addresses_are_redacted() -> None:
    assert redact("10.1.2.3:51234 - GET /") == "[IP]:51234 - GET /"
    assert redact("from 2001:db8::7") == "from [IP]"


def test_decode_disguises_is_bounded_and_tolerant() -> None:
    assert decode_disguises("%252540") == "@"
    assert decode_disguises("%25252540") == "%40"  # three layers, not more
    assert decode_disguises("%ff%fe") == "\ufffd\ufffd"
    assert decode_disguises("&#x40;&#64;") == "@@"


@pytest.mark.parametrize(
    ("candidate", "valid"),
    [
        ("DE89370400440532013000", True),
        ("de89-3704-0044-0532-0130-00", True),
        ("DE89370400440532013001", False),  # checksum
        ("XX89370400440532013000", False),  # no such country
        ("DE8937040044053201300", False),  # German IBANs have 22 characters
    ],
)
def test_iban_valid(candidate: str, valid: bool) -> None:
    assert iban_valid(candidate) is valid
