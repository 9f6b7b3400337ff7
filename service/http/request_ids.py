"""Request ids the service makes: random, and never mistaken for personal data in a log.

A ``uuid4().hex`` holds a run of 13 to 19 decimal digits that passes the Luhn check about
once in 470 draws. The log redactor (``prompting.redaction``) rightly writes such a run as
``[CARD]``, and that request's log line would then no longer carry the id its caller got
in ``X-Request-ID`` (measured: 425 of 200,000 draws). Such a draw is drawn again.

Only a draw with a run of seven or more digits is shown to the redactor: every detector
that can fire on lowercase hexadecimal (cards, phone numbers, IBANs such as ``ad``/``be``
ones) needs at least that many digits in a row; e-mail addresses, IP addresses and
secrets need characters hex has not (``@``, ``.``, ``:``, ``-``, ``_``, ``=``). That skips
the check for about two draws in three. ``tests/service/http/test_request_ids.py`` holds
the redactor to it.
"""

from __future__ import annotations

import re
import uuid

from prompting.redaction import redact

__all__ = ["SHORTEST_FLAGGED_DIGIT_RUN", "draw_hex", "new_request_id"]

#: The shortest run of digits any redaction pass can flag in lowercase hexadecimal.
SHORTEST_FLAGGED_DIGIT_RUN = 7
_DIGIT_RUN = re.compile(rf"[0-9]{{{SHORTEST_FLAGGED_DIGIT_RUN},}}")


def draw_hex() -> str:
    """One draw: a random UUID's 32 hex digits."""
    return uuid.uuid4().hex


def new_request_id() -> str:
    """32 random hex digits that the log redactor leaves as they are."""
    while True:
        candidate = draw_hex()
        if _DIGIT_RUN.search(candidate) is None or redact(candidate) == candidate:
            return candidate
