"""The checks behind redaction's patterns (pure): an IBAN's mod-97 and country format, a
card number's Luhn sum over digit groups.
"""

from __future__ import annotations

from collections.abc import Sequence

from stdnum import iban as stdnum_iban

__all__ = ["iban_valid", "longest_card_run"]


def iban_valid(candidate: str) -> bool:
    """True if `candidate` (spaces or dashes allowed, any case) is a valid IBAN.

    The mod-97 check runs first (microseconds); only numbers passing it are checked
    against their country's length and format by ``python-stdnum`` (~0.2 ms).
    """
    compact = candidate.replace(" ", "").replace("-", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact.isalnum():
        return False
    if not compact.isascii():
        return False
    rearranged = compact[4:] + compact[:4]
    if int("".join(str(int(char, 36)) for char in rearranged)) % 97 != 1:
        return False
    return stdnum_iban.is_valid(compact)


#: Luhn's doubled digit values: 2d, minus 9 when over 9.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def longest_card_run(groups: Sequence[str]) -> int | None:
    """Index of the last group of the longest 13-19 digit Luhn-valid run from ``groups[0]``.

    Incremental: per parity of a digit's index, the sum of the digits and of their doubles;
    the digits at the parity of the last one count plain, the others doubled.
    """
    plain = [0, 0]
    doubled = [0, 0]
    count = 0
    longest = None
    for index, group in enumerate(groups):
        for char in group:
            value = ord(char) - 48
            plain[count & 1] += value
            doubled[count & 1] += _DOUBLED[value]
            count += 1
        if count > 19:
            break
        last = (count - 1) & 1
        # Two groups are a number with a decimal part or a range, not a written card.
        if count >= 13 and index != 1 and (plain[last] + doubled[1 - last]) % 10 == 0:
            longest = index
    return longest
