"""Generated request ids survive the log redactor, so a log line carries the id its caller got."""

from __future__ import annotations

import random
import re
import uuid

import pytest

from prompting.redaction import redact
from service.http import request_ids
from service.http.request_ids import SHORTEST_FLAGGED_DIGIT_RUN, new_request_id

#: 32 hex digits holding a Luhn-valid 16-digit run: the redactor writes ``[CARD]`` for it.
CARD_LIKE = "ab4111111111111111cdef0123abcdef"


def test_a_card_like_uuid_is_what_the_redactor_would_change() -> None:
    assert redact(CARD_LIKE) != CARD_LIKE  # the premise of the tests below


def test_a_draw_the_redactor_would_change_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    clean = "0123abcd" * 4
    draws = iter([CARD_LIKE, CARD_LIKE, clean])
    monkeypatch.setattr(request_ids, "draw_hex", lambda: next(draws))
    assert new_request_id() == clean


def test_generated_ids_are_32_hex_digits_unique_and_left_alone_by_the_redactor() -> None:
    ids = [new_request_id() for _ in range(20_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert [i for i in ids if redact(i) != i] == []


def test_no_redaction_pass_fires_on_hex_without_a_long_digit_run() -> None:
    """The shortcut's premise, held against the real redactor: hex whose digit runs are all
    shorter than SHORTEST_FLAGGED_DIGIT_RUN is never changed, however the runs are built."""
    rng = random.Random(1503)
    longest = SHORTEST_FLAGGED_DIGIT_RUN - 1
    built = [
        # Runs of the longest skipped length glued by one letter: a card split by letters,
        # IBAN-shaped prefixes (``ad``, ``be``, ``ae``, ``ee``) and phone-like groups.
        "".join(
            rng.choice("abcdef") + f"{rng.randrange(10**longest):0{longest}d}" for _ in range(5)
        )[:32]
        for _ in range(3_000)
    ]
    built += [f"{p}{rng.randrange(10**longest):0{longest}d}" * 4 for p in ("ad", "be", "ae", "ee")]
    drawn = [uuid.uuid4().hex for _ in range(20_000)]
    short = [
        h for h in built + drawn if not re.search(rf"[0-9]{{{SHORTEST_FLAGGED_DIGIT_RUN},}}", h)
    ]
    assert len(short) > 10_000
    assert [h for h in short if redact(h) != h] == []
