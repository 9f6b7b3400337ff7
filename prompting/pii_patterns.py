"""What redaction finds (pure): the replacement tokens, the patterns for secrets, e-mail
addresses, IBANs, card numbers, IP addresses and phone numbers, their checks (mod-97,
Luhn, ``phonenumbers``) and :func:`replace_personal_data`, which runs them in order on
normalised text. :mod:`prompting.redaction` is the entry point (it normalises first);
its docstring lists the passes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

import phonenumbers

from prompting.pii_checks import iban_valid, longest_card_run

__all__ = [
    "CARD",
    "EMAIL",
    "IBAN",
    "IP",
    "PHONE",
    "SECRET",
    "replace_personal_data",
]

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
IBAN = "[IBAN]"
IP = "[IP]"
SECRET = "[SECRET]"  # noqa: S105 (the replacement token, not a password)


# --- patterns --------------------------------------------------------------------------
# Python's regex engine scans fast for a pattern's first character when that is a literal
# or a character set, so word-boundary checks come right after it as a lookbehind, and
# the costly case-insensitive keyword patterns only run when their keyword is present.

#: Keys and tokens with a known prefix; the lookbehind after it is a word boundary.
_PREFIXED_SECRET = re.compile(
    r"""
      sk-(?<!\wsk-)(?=[A-Za-z0-9_-]*[0-9])[A-Za-z0-9_-]{16,}      # OpenAI, Anthropic
    | [rsp]k_(?<!\w.k_)(?:live|test)_[A-Za-z0-9]{16,}           # Stripe
    | gh[opsur]_(?<!\wgh._)[A-Za-z0-9]{16,}                     # GitHub
    | github_pat_(?<!\wgithub_pat_)[A-Za-z0-9_]{16,}
    | A[KS]IA(?<!\wA.IA)[A-Z0-9]{16}(?![A-Za-z0-9])             # AWS access key id
    | AIza(?<!\wAIza)[A-Za-z0-9_-]{35}                          # Google API key
    | xox[abposre]-(?<!\wxox.-)[A-Za-z0-9-]{10,}                # Slack
    | xapp-(?<!\wxapp-)[A-Za-z0-9-]{10,}
    | hf_(?<!\whf_)[A-Za-z0-9]{30,}                             # Hugging Face
    | glpat-(?<!\wglpat-)[A-Za-z0-9_-]{20,}                    # GitLab
    | eyJ(?<!\weyJ)[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*   # JWT
    """,
    re.VERBOSE,
)
#: AWS secret access keys: 40 base64 characters standing alone (or after a ``/``, as in
#: a path), with an upper- and a lower-case letter and a digit (hex digests and request
#: ids have no upper case). Not followed by base64 padding, but ``KEY=value`` is fine.
_AWS_SECRET = re.compile(
    r"[A-Za-z0-9/+](?<![A-Za-z0-9+][A-Za-z0-9/+])(?=[A-Za-z0-9/+]{39}(?![A-Za-z0-9/+]|=(?!\w)))"
    r"(?=[a-z0-9/+]{0,39}[A-Z])(?=[A-Z0-9/+]{0,39}[a-z])(?=[A-Za-z/+]{0,39}[0-9])"
    r"[A-Za-z0-9/+]{39}"
)
#: PEM blocks (private keys, certificates): header to footer, or to the end if cut.
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]{1,40}-----.*?(?:-----END [A-Z0-9 ]{1,40}-----|\Z)", re.S)
#: ``Bearer <token>``: 16+ token characters with a digit, or 24+ ("bearer bonds" stays).
_BEARER = re.compile(
    r"(?P<keep>\b(?i:bearer)\s+)"
    r"(?:(?=[A-Za-z0-9._~+/-]*[0-9])[A-Za-z0-9._~+/-]{15,}|[A-Za-z0-9._~+/-]{23,})"
    r"[A-Za-z0-9_~+/-]=*"
)
#: ``password=…``, ``api_key: "…"``: values of 6+ characters with a digit or symbol, or 16+.
_ASSIGNED_SECRET = re.compile(
    r"""
    (?P<keep>(?i:\b(?:api[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret
                     |secret|password|passwd|pwd|token)\b)["']?\s*[:=]\s*["']?)
    (?:(?=[^\s"',;]*[0-9_+/=!@\#$%^&*.-])[^\s"',;]{6,}|[^\s"',;]{16,})
    """,
    re.VERBOSE,
)
#: ``name@host.tld``, also with spaces around the ``@`` (``name @ host.tld``).
#: Spaced, the host's last label needs a letter (``0 @ 00.00.00`` is no address).
_EMAIL = re.compile(
    r"(?<![\w.%+'-])[\w.%+'-]+"
    r"(?:@[\w-]+(?:\.[\w-]+)+|\ {0,3}@\ {0,3}[\w-]+(?:\.[\w-]+)*\.[\w-]*[^\W\d_][\w-]*)"
)
#: ``name [at] host [dot] tld`` and the like.
_EMAIL_SPELLED = re.compile(
    r"(?<![\w.%+'-])[\w.%+'-]+\s{0,3}[\[({<]\s{0,2}(?i:at)\s{0,2}[\])}>]\s{0,3}[\w-]+"
    r"(?:(?:\s{0,3}[\[({<]\s{0,2}(?i:dot)\s{0,2}[\])}>]\s{0,3}|\.)[\w-]+)+"
)
#: Country code (any case), check digits, then 11-30 letters or digits, grouped by four
#: with single spaces or dashes, or not grouped.
_IBAN = re.compile(
    r"[A-Za-z](?<![A-Za-z0-9][A-Za-z])[A-Za-z][0-9]{2}(?:[ -]?[A-Za-z0-9]{4}){2,7}"
    r"(?:[ -]?[A-Za-z0-9]{1,4})?(?![A-Za-z0-9])"
)
#: Digit groups joined by up to three spaces, dots, dashes or underscores, 13+ digits.
_CARD = re.compile(r"[0-9](?<![0-9]{2})(?:[ ._-]{0,3}[0-9]){12,}(?![0-9])")
_DIGIT_GROUP = re.compile(r"[0-9]+")
#: Candidates only: ``ipaddress`` decides (so ``10:30:00`` stays).
_IPV6 = re.compile(
    r"[0-9A-Fa-f:](?<![\w:][0-9A-Fa-f:])[0-9A-Fa-f]{0,3}(?::[0-9A-Fa-f]{0,4}){1,7}"
    r"(?:(?<=:)(?:[0-9]{1,3}\.){3}[0-9]{1,3})?(?![\w:]|\.[0-9])"
)
#: Four dotted numbers of up to three digits; ``_ipv4`` checks each is at most 255.
_IPV4 = re.compile(r"[0-9](?<![\w.][0-9])[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?![0-9]|\.[0-9])")
#: International numbers: ``+`` and 7-15 digits, single separators or a parenthesis.
_PHONE_INTERNATIONAL = re.compile(r"\+(?<![\w+]\+)[0-9](?:[ ./()+-]{0,2}[0-9]){6,14}")
_PHONE_NATIONAL = re.compile(
    r"""
    [0-9(](?<![\w+][0-9(])
    (?:
        # North American: (415) 555-2671, 415-555-2671, 415.555.2671, 1-800-555-0199
        (?:(?<=1)[ .-](?:\([0-9]{3}\)\ ?|[0-9]{3}[ .-])
          |(?<=\()[0-9]{3}\)\ ?
          |(?<=[0-9])[0-9]{2}[ .-])
        [0-9]{3}[ .-][0-9]{4}
      | # trunk prefix 0, groups by spaces or dashes, 9+ digits: 020 7946 0958, 0151-1234-5678
        (?<=0)(?P<trunk>[0-9]{1,4}(?P<sep>[ -])[0-9]{2,4}(?:(?P=sep)[0-9]{2,4}){1,3})
      | # French dotted: 06.12.34.56.78
        (?<=0)[0-9](?:\.[0-9]{2}){4}
    )
    (?![\w])
    """,
    re.VERBOSE,
)
#: After a keyword (phone, tel, mobile, …), any 7-15 digits count: ``tel: 4155552671``.
_PHONE_AFTER_KEYWORD = re.compile(
    r"""
    (?P<keep>(?i:\b(?:phone|tel|telephone|mobile|cell|fax|whatsapp)\b)[^\w\n+]{0,3}
        (?:(?i:number|no|nr)\b\.?[^\w\n+]{0,3})?)
    \+?[0-9](?:[ ./()-]{0,2}[0-9]){6,14}
    """,
    re.VERBOSE,
)
#: Candidates for ``phonenumbers``: trunk-prefixed national numbers the patterns above
#: leave (``030/901820``, ``07700900123``, ``0041 44 668 18 00``). Bare digit runs
#: without a leading 0 are not tried: ``order 4155552671`` is an order number.
_PHONE_CANDIDATE = re.compile(
    r"0(?<![\w+.,/-]0)[0-9](?:[ ./()-]{0,2}[0-9]){5,13}(?![\w]|[.,/-][0-9])"
)
#: Regions whose national numbering plans ``phonenumbers`` tries on a candidate.
PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL")
_HAS_DIGIT = re.compile(r"[0-9]")
_SECRET_KEYWORDS = ("password", "passwd", "pwd", "secret", "token", "api")
_PHONE_KEYWORDS = ("phone", "tel", "mobile", "cell", "fax", "whatsapp")


# --- replacement callbacks -------------------------------------------------------------


def _keep_then(token: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        return match.group("keep") + token

    return replace


def _iban(match: re.Match[str]) -> str:
    return IBAN if iban_valid(match.group()) else match.group()


def _cards(match: re.Match[str]) -> str:
    """Redacts the longest runs of whole digit groups that form a Luhn-valid number.

    A card glued to a neighbouring number by a space (``5 4111 1111 1111 1111``) is
    still found: runs starting at every group are tried.
    """
    text = match.group()
    spans = [(group.start(), group.end()) for group in _DIGIT_GROUP.finditer(text)]
    groups = [text[start:end] for start, end in spans]
    pieces: list[str] = []
    kept_to = 0
    first = 0
    while first < len(groups):
        longest = longest_card_run(groups[first : first + 19])
        if longest is None:
            first += 1
            continue
        pieces += [text[kept_to : spans[first][0]], CARD]
        kept_to = spans[first + longest][1]
        first += longest + 1
    return "".join([*pieces, text[kept_to:]]) if pieces else text


def _ip(match: re.Match[str]) -> str:
    """``[IP]``, unless not an address or loopback/unspecified (a listener, no one's)."""
    try:
        address = ipaddress.ip_address(match.group())
    except ValueError:
        return match.group()
    return match.group() if address.is_loopback or address.is_unspecified else IP


def _phone_candidate(match: re.Match[str]) -> str:
    """``[PHONE]`` if some region of `PHONE_REGIONS` calls the candidate a valid number.

    Under nine digits it stays: ``01012024`` is more likely a date than a number.
    """
    candidate = match.group()
    if sum(char.isdigit() for char in candidate) < 9:
        return candidate
    for region in PHONE_REGIONS:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return PHONE
    return candidate


def _national_phone(match: re.Match[str]) -> str:
    trunk = match.group("trunk")
    if trunk is not None and len(trunk) - trunk.count(match.group("sep")) < 8:
        return match.group()  # under 9 digits with the leading 0: a date like 01-02-2024
    return PHONE


_bearer = _keep_then(SECRET)
_assigned_secret = _keep_then(SECRET)
_phone_after_keyword = _keep_then(PHONE)


# --- all passes, in order -------------------------------------------------------


def replace_personal_data(text: str) -> str:
    """`text` (already normalised) with secrets and personal data replaced, in order."""
    lowered = text.lower()
    if "-----begin" in lowered:
        text = _PEM.sub(SECRET, text)
    text = _PREFIXED_SECRET.sub(SECRET, text)
    if len(text) >= 40 and any(len(word) >= 40 for word in text.split()):
        text = _AWS_SECRET.sub(SECRET, text)
    if "bearer" in lowered:
        text = _BEARER.sub(_bearer, text)
    if any(keyword in lowered for keyword in _SECRET_KEYWORDS):
        text = _ASSIGNED_SECRET.sub(_assigned_secret, text)
    if "@" in text:
        text = _EMAIL.sub(EMAIL, text)
    if "at" in lowered and ("[" in text or "(" in text or "{" in text or "<" in text):
        text = _EMAIL_SPELLED.sub(EMAIL, text)
    if not _HAS_DIGIT.search(text):
        return text
    text = _IBAN.sub(_iban, text)
    text = _CARD.sub(_cards, text)
    if text.count(":") >= 2:
        text = _IPV6.sub(_ip, text)
    if "." in text:
        text = _IPV4.sub(_ip, text)
    if any(keyword in lowered for keyword in _PHONE_KEYWORDS):
        text = _PHONE_AFTER_KEYWORD.sub(_phone_after_keyword, text)
    if "+" in text:
        text = _PHONE_INTERNATIONAL.sub(PHONE, text)
    text = _PHONE_NATIONAL.sub(_national_phone, text)
    return _PHONE_CANDIDATE.sub(_phone_candidate, text)
