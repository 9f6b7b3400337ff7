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
import html
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import unquote

import phonenumbers
from stdnum import iban as stdnum_iban

__all__ = [
    "decode_disguises",
    "iban_valid",
    "normalise",
    "redact",
    "redact_key",
    "redact_value",
]

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
IBAN = "[IBAN]"
IP = "[IP]"
SECRET = "[SECRET]"  # noqa: S105 (the replacement token, not a password)

# --- normalisation ---------------------------------------------------------------------

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
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_NUMERIC_ENTITY = re.compile(r"&#(?:[0-9]{1,7}|[xX][0-9A-Fa-f]{1,6});")
#: Rounds of percent-decoding: ``%2540`` is ``%40`` is ``@``.
_PERCENT_ROUNDS = 3


#: A URL's query string, where ``+`` stands for a space (form encoding)...
_QUERY = re.compile(r"\?[^\s\"'#<>]+")
#: ...but not at the start of a name or value, where it is more likely a phone's ``+``.
_FORM_PLUS = re.compile(r"(?<![=&?;])\+")


def _plus_as_space(match: re.Match[str]) -> str:
    return _FORM_PLUS.sub(" ", match.group())


def decode_disguises(text: str) -> str:
    """`text` with percent-encoding (up to three layers) and numeric HTML entities decoded."""
    for _ in range(_PERCENT_ROUNDS):
        if "%" not in text or not _PERCENT.search(text):
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


# --- checks (pure) ---------------------------------------------------------------------


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


#: Luhn's doubled digit values: 2d, minus 9 when over 9.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _longest_card(groups: Sequence[str]) -> int | None:
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
        longest = _longest_card(groups[first : first + 19])
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


# --- redaction -------------------------------------------------------------------------


def _redact_normalised(text: str) -> str:
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


def redact(text: str) -> str:
    """`text` decoded and normalised, personal data and secrets replaced by ``[EMAIL]``…"""
    text = normalise(decode_disguises(text))
    if "%" in text and _PERCENT.search(text):  # full-width percent signs are ``%`` after NFKC
        text = normalise(decode_disguises(text))
    text = _redact_normalised(text)
    if "?" in text and "+" in text:
        # A query string's ``+`` may be a form-encoded space (``jane+@+example.com``) or
        # itself (``%2B44``, base64): both readings are redacted, one after the other.
        spaced = _QUERY.sub(_plus_as_space, text)
        if spaced != text:
            text = _redact_normalised(spaced)
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
