"""The one signature of what the controller sends (gates and notifications)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from controller.signing import sign_body, verify_signature

BODY = b'{"prompt":"faq","version":"1.1.0"}'


def test_the_signature_is_the_hex_hmac_sha256_of_the_exact_body() -> None:
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert sign_body(BODY, "s3cret") == f"sha256={expected}"
    assert verify_signature(BODY, sign_body(BODY, "s3cret"), "s3cret")


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param(sign_body(BODY, "other"), id="other-key"),
        pytest.param(sign_body(BODY + b" ", "s3cret"), id="other-body"),
        pytest.param(sign_body(BODY, "s3cret").removeprefix("sha256="), id="no-prefix"),
        pytest.param("sha256=é\udcff", id="non-ascii"),
    ],
)
def test_anything_else_does_not_verify(header: str | None) -> None:
    assert not verify_signature(BODY, header, "s3cret")
