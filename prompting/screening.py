"""Screen retrieved text for planted instructions (OWASP LLM01, indirect prompt injection) (pure).

Documents are data. A sentence that talks to the assistant instead of the reader — an
order to ignore its instructions, a role marker such as ``SYSTEM:``, a request to reveal
its prompt or a secret, a claimed secret, forged delimiters, or text hidden with
zero-width or bidi characters — is *flagged* and dropped before the text can reach a
prompt. :func:`screen_text` runs at index time (so the store never holds the sentence)
and again at retrieval time (for stores filled by other tools or older releases).

The rules aim at sentences addressed to a model; policy text addressed to customers
("You must return the item within 30 days") is not flagged. Screening is one layer:
the prompt's delimiters, the system message's notice and the output check
(``service.answering.guardrails``) stand behind it. Known gaps: homoglyphs (Cyrillic letters
in Latin words) and paraphrases no rule anticipates.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "SCREENING_VERSION",
    "Flag",
    "Screened",
    "assess_sentence",
    "normalise_for_screening",
    "screen_text",
    "split_sentences",
]

#: Bumped whenever the rules change, so that re-indexing rewrites screened passages.
SCREENING_VERSION = 1

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_HIDDEN_MARKUP = re.compile(r"<!--|-->")
#: Characters that hide or rewrite text: every Unicode format (Cf) character (as of
#: Unicode 15; a test checks this Python's tables), control (Cc) characters but tab and
#: line ends, and the Hangul fillers (blank-looking letters that NFKC keeps).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f\u115f\u1160\u3164\uffa0]"
)

_ASSISTANT = r"(?:ai|a\.i\.|assistant|chat ?bot|llm|gpt|language model|large language model)"
_TARGETS = (
    r"(?:system (?:prompt|message|instructions?)|(?:your|the) (?:initial|original|hidden|secret|"
    r"previous|above|first) (?:prompt|instructions|message)|your (?:prompt|instructions|rules|"
    r"guidelines|configuration)|canary|(?:everything|the text|the words) above)"
)
_SECRETS = r"(?:secrets?|passwords?|passphrases?|api[ -]?keys?|access tokens?|credentials|canary)"
_REVEAL = (
    r"(?:reveal|print|repeat|output|display|disclose|leak|recite|dump|expose|echo|write out|"
    r"spell out|tell (?:me|us|the user|them)|show (?:me|us|the user))"
)
_NOT_NEGATED = r"(?<!never )(?<!not )(?<!n't )"
#: An imperative: the verb opens the sentence or follows "and", "then", "please", a comma...
_IMPERATIVE = r"(?:^|\b(?:and|then|please|now|also|just)\s|[,;:]\s)"

#: (rule, keywords, expression), tried in order against the normalised sentence. The
#: expression runs only when the sentence holds one of the keywords (every match of the
#: expression does), which keeps screening cheap on ordinary text.
_RULES: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    (
        "ignore-instructions",
        ("ignore", "disregard", "forget", "override", "bypass", "skip", "drop", "abandon"),
        re.compile(
            r"\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon)\b[^.!?]{0,40}?"
            r"\b(?:previous|prior|above|earlier|preceding|former|all|any|every|your|the system)\b"
            r"[^.!?]{0,30}?\b(?:instructions?|prompts?|rules|directions|guidelines|directives|"
            r"context|messages?|constraints)\b"
        ),
    ),
    (
        "role-marker",
        (":", "<", "["),
        re.compile(
            r"^[>*#\[(\"'`\s]*(?:system|assistant|developer|user|human|ai|model)\s*[\])*]*\s*:"
            r"|\bassistant\s*:|\[\s*system\s*\]"
            r"|<\|?\s*(?:im_start|im_end|im_sep|system|assistant|endoftext|eot_id|start_header_id)"
            r"|\[/?inst\]|<</?sys>>|</?\s*(?:system|assistant|instructions?)\s*>"
        ),
    ),
    (
        "delimiter-forgery",
        ("<<<", ">>>", "end ", "begin ", "start "),
        re.compile(r"<<<|>>>|\b(?:end|begin|start) (?:of )?(?:the )?(?:reference|context)\b"),
    ),
    (
        "reveal-request",
        (
            "reveal",
            "print",
            "repeat",
            "output",
            "display",
            "disclose",
            "leak",
            "recite",
            "dump",
            "expose",
            "echo",
            "write out",
            "spell out",
            "tell",
            "show",
            "give",
            "share",
            "your",
        ),
        re.compile(
            rf"{_NOT_NEGATED}\b{_REVEAL}\b[^.!?]{{0,40}}?\b{_TARGETS}"
            rf"|{_IMPERATIVE}(?:reveal|print|output|disclose|leak|recite|dump|expose|tell|give|"
            rf"share)\b[^.!?]{{0,40}}?\b{_SECRETS}\b"
            r"|\bwhat (?:is|are|were) your (?:system prompt|instructions|rules|guidelines)\b"
        ),
    ),
    (
        "secret-claim",
        ("secret", "code", "word", "passphrase", "password", "canary"),
        re.compile(
            r"\b(?:secret(?: code| word| phrase| key)?|code ?word|magic word|passphrase|"
            r"password|canary(?: token)?)\s*(?:is|are|=|:)\s*[\"'\u201c\u2018]?"
            r"(?=[a-z0-9_-]*[0-9_-])"
            r"[a-z0-9][a-z0-9_-]{2,}|\bthe secret (?:is|are)\b"
        ),
    ),
    (
        "assistant-directive",
        (
            "ai",
            "a.i.",
            "assistant",
            "bot",
            "llm",
            "gpt",
            "language model",
            "act as",
            "pretend",
            "role",
            "behave",
            "you are now",
            "you're now",
            "instructions",
            "prompt",
            "directives",
            "from now on",
            "henceforth",
            "only with",
            "with only",
            "exactly with",
            "with the",
            "asked",
            "tell",
            "mention",
            "reveal",
            "inform",
            "alert",
            "programming",
            "jailbreak",
            "developer mode",
            "dan mode",
            "do anything now",
            "new system",
        ),
        re.compile(
            rf"\b(?:note|message|instructions?|attention|hey|dear|hello|hi) (?:to|for) "
            rf"(?:the |any |all )?{_ASSISTANT}s?\b"
            rf"|^(?:dear |hey |hi |hello |attention,? |note,? )?(?:the )?{_ASSISTANT}s?\s*[,:;]"
            rf"|\b(?:the )?{_ASSISTANT}s? (?:must|shall|should|is to|are to|has to|needs to)\b"
            rf"|\b(?:act as|pretend (?:to be|you are)|role-?play as|behave as|you are now|"
            rf"you're now) (?:an?|the|my) (?:\w+ )?(?:{_ASSISTANT}|model|persona|character|"
            rf"hacker|unrestricted|different)\b"
            rf"|\b(?:you are|you're) (?:an? |the )?(?:helpful )?{_ASSISTANT}\b"
            r"|\b(?:new|real|actual|hidden|secret|override|updated) (?:system )?"
            r"(?:instructions|prompt|directives)\s*:|\bnew system (?:prompt|instructions|message)\b"
            r"|\b(?:from now on|henceforth),? (?:you (?:will|must|are to|shall|should) )?"
            r"(?:answer|respond|reply|say|only respond|always respond|ignore|act)\b"
            r"|\b(?:respond|answer|reply)\b[^.!?]{0,25}?\b(?:only with|with only|exactly with|"
            r"with the (?:word|phrase|secret|following|text))\b"
            r"|\b(?:when|if|whenever) (?:you are |you're )?asked\b[^.!?]{0,60}?\b(?:say|reply|"
            r"respond|output)\b"
            r"|\b(?:do not|don't|never) (?:tell|mention|reveal|inform|alert) (?:the |this )?"
            r"(?:user|customer|human|operator)\b(?!['\u2019]s)"
            r"|\byour (?:system prompt|programming|previous instructions|original instructions|"
            r"initial instructions)\b"
            r"|\b(?:jailbreak|developer mode|dan mode|do anything now)\b"
        ),
    ),
)


@dataclass(frozen=True)
class Flag:
    """A sentence taken out, and the rule that flagged it."""

    sentence: str
    rule: str


@dataclass(frozen=True)
class Screened:
    """Text with its flagged sentences removed, and what was removed."""

    text: str
    flags: tuple[Flag, ...] = ()


def normalise_for_screening(text: str) -> str:
    """NFKC, invisible characters removed, case-folded, whitespace collapsed (pure)."""
    visible = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return " ".join(visible.casefold().split())


def assess_sentence(sentence: str) -> str | None:
    """The rule a sentence breaks, or None when it reads as plain reference text (pure)."""
    if _INVISIBLE.search(sentence) or _HIDDEN_MARKUP.search(sentence):
        return "hidden-text"
    normalised = normalise_for_screening(sentence)
    for rule, keywords, expression in _RULES:
        if any(word in normalised for word in keywords) and expression.search(normalised):
            return rule
    return None


def split_sentences(line: str) -> list[str]:
    """The sentences of one line of text, as screening cuts them (pure)."""
    return [piece for piece in _SENTENCE_END.split(line.strip()) if piece]


def screen_text(text: str) -> Screened:
    """`text` without its flagged sentences (pure).

    Lines are kept (a line left empty is removed); within a line, kept sentences are
    joined by one space. Text with nothing flagged comes back unchanged.
    """
    flags: list[Flag] = []
    lines: list[str] = []
    for line in text.split("\n"):
        if not line.strip():
            lines.append(line)
            continue
        kept: list[str] = []
        pieces = split_sentences(line)
        for sentence in pieces:
            rule = assess_sentence(sentence)
            if rule is None:
                kept.append(sentence)
            else:
                flags.append(Flag(sentence, rule))
        if kept:
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(line if len(kept) == len(pieces) else indent + " ".join(kept))
    if not flags:
        return Screened(text)
    cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return Screened(cleaned, tuple(flags))
