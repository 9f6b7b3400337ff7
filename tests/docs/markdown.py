"""A small Markdown checker for the repository's docs (pure, no I/O but reading files).

Three checks, each finding named ``file:line``:

- fences: every fenced code block is closed, and a closing fence carries no text (a
  closing ```` ``` ```` followed by prose is not a closing fence: everything after it
  renders as code, "inside out");
- links: relative links and images point to files that exist, and ``#anchors`` to
  headings that exist (GitHub's slugs);
- commands: every ``make <target>`` and ``promptctl <command> [<subcommand>]`` shown in a
  shell block or an inline code span exists. The truth is passed in (the Makefile's
  targets, the CLI's command tree), never a list kept here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Block",
    "CliCommand",
    "Finding",
    "Invocation",
    "check_commands",
    "check_fences",
    "check_links",
    "find_invocations",
    "heading_anchors",
    "makefile_targets",
    "parse_blocks",
    "slug",
]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
SHELL_LANGS = {"sh", "bash", "shell", "zsh"}
CONSOLE_LANGS = {"console", "shell-session", ""}
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s|$)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
#: Where a command starts in a shell line: line start, after a separator or `--`.
COMMAND_START = r"(?:^|&&|\|\||[;|(`]|\$\(|\bthen\b|\bdo\b|\s--|\bsudo\b|\btime\b)\s*"
MAKE = re.compile(COMMAND_START + r"make((?:\s+[^\s;&|)`#]+)*)")
PROMPTCTL = re.compile(r"(?:^|[\s(\"'`=/])promptctl(?![\w.-])((?:\s+[^\s;&|)`#\"']+)*)")
PYTHON_PROMPTCTL = re.compile(r"-m\s+promptctl\.main((?:\s+[^\s;&|)`#\"']+)*)")
TARGET_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-/ ]*?)\s*:(?![=:])")


@dataclass(frozen=True)
class Finding:
    """One problem and its line (the caller knows the file)."""

    line: int
    message: str


@dataclass
class Block:
    """A fenced code block: its info string, first content line and lines."""

    lang: str
    start: int
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Invocation:
    """`make`/`promptctl` and the words after it, where it was shown."""

    tool: str
    words: tuple[str, ...]
    line: int


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (links and inline code reduced to their text)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def parse_blocks(text: str) -> tuple[list[Block], list[tuple[int, str]], list[Finding]]:
    """Split into fenced blocks and prose lines (1-based numbers); fence findings too."""
    blocks: list[Block] = []
    prose: list[tuple[int, str]] = []
    findings: list[Finding] = []
    fence: tuple[str, int] | None = None  # (fence characters, opening line)
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None:
            if match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
                fence = (match.group(1), number)
                blocks.append(Block(match.group(2).strip().split(" ")[0].lower(), number + 1))
            else:
                prose.append((number, line))
            continue
        marker, opened = fence
        if match and match.group(1)[0] == marker[0] and len(match.group(1)) >= len(marker):
            if match.group(2).strip():
                findings.append(
                    Finding(
                        number,
                        f"text after a closing fence ({match.group(2).strip()[:40]!r}): the "
                        f"block opened on line {opened} stays open; put the text on its own line",
                    )
                )
                blocks[-1].lines.append(line)
                continue
            fence = None
            continue
        blocks[-1].lines.append(line)
    if fence is not None:
        findings.append(Finding(fence[1], "code fence opened here is never closed"))
    return blocks, prose, findings


def check_fences(text: str) -> list[Finding]:
    """Unclosed fences and closing fences followed by text."""
    return parse_blocks(text)[2]


def heading_anchors(text: str) -> set[str]:
    """The anchors of every heading outside code blocks (duplicates get -1, -2, …)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in parse_blocks(text)[1]:
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        anchors.add(base if count == 0 else f"{base}-{count}")
    return anchors


def _prose_without_code(line: str) -> str:
    return INLINE_CODE.sub("", line)


def check_links(path: Path, root: Path) -> list[Finding]:
    """Relative links to missing files or to anchors no heading has."""
    text = path.read_text(encoding="utf-8")
    findings = []
    for number, line in parse_blocks(text)[1]:
        targets = [m.group(1) for m in LINK.finditer(_prose_without_code(line))]
        reference = REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
        for target in targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue  # http:, https:, mailto: …
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                findings.append(Finding(number, f"link to a missing file: {target}"))
                continue
            if root not in linked.parents and linked != root:
                findings.append(Finding(number, f"link outside the repository: {target}"))
                continue
            if anchor and linked.suffix == ".md":
                anchors = heading_anchors(linked.read_text(encoding="utf-8"))
                if anchor not in anchors:
                    findings.append(
                        Finding(number, f"link to a missing anchor: {target} (no such heading)")
                    )
    return findings


def _shell_lines(block: Block) -> Iterator[tuple[int, str]]:
    """The command lines of a block: all of a sh block, `$ ` lines (and continuations) else."""
    console = block.lang in CONSOLE_LANGS
    continued = False
    for offset, raw in enumerate(block.lines):
        line = raw.strip()
        if console:
            if line.startswith("$ "):
                line, continued = line[2:], line.endswith("\\")
            elif continued:
                continued = line.endswith("\\")
            else:
                continue
        line = re.sub(r"(^|\s)#.*$", "", line)  # comments
        yield block.start + offset, line


def _invocations(line: str, number: int) -> Iterator[Invocation]:
    line = re.sub(r"'[^']*'", "''", line)  # quoted arguments are not commands
    line = line.rstrip("\\ ")
    for match in MAKE.finditer(line):
        yield Invocation("make", tuple(match.group(1).split()), number)
    for pattern in (PROMPTCTL, PYTHON_PROMPTCTL):
        for match in pattern.finditer(line):
            yield Invocation("promptctl", tuple(match.group(1).split()), number)


def find_invocations(text: str) -> list[Invocation]:
    """Every `make …` and `promptctl …` in shell blocks and in inline code spans."""
    blocks, prose, _ = parse_blocks(text)
    found: list[Invocation] = []
    for block in blocks:
        if block.lang in SHELL_LANGS | CONSOLE_LANGS:
            for number, line in _shell_lines(block):
                found.extend(_invocations(line, number))
    for number, line in prose:
        for match in INLINE_CODE.finditer(line):
            span = match.group(2).strip()
            if re.match(r"^(?:\S*/)?(?:make|promptctl)\s", span) or "-m promptctl.main " in span:
                found.extend(_invocations(span, number))
    return found


def makefile_targets(makefile: str) -> set[str]:
    """The explicit targets a Makefile defines (not variables, not pattern rules)."""
    targets: set[str] = set()
    for line in makefile.splitlines():
        if line.startswith(("\t", "#", " ")):
            continue
        match = TARGET_LINE.match(line)
        if match:
            targets.update(t for t in match.group(1).split() if "%" not in t)
    return targets


def _words(invocation: Invocation) -> list[str]:
    """The positional words: options, assignments and placeholders dropped."""
    words = []
    for word in invocation.words:
        if word.startswith("-") or "=" in word or word == "\\":
            continue
        words.append(word)
    return words


@dataclass(frozen=True)
class CliCommand:
    """What the docs may show of one CLI command: its options and subcommands."""

    options: frozenset[str]
    subcommands: Mapping[str, CliCommand] | None = None


def _check_options(shown: str, command: CliCommand, words: list[str]) -> str | None:
    for word in words:
        if word == "--":
            return None  # what follows is not ours
        option = word.split("=", 1)[0]
        if re.match(r"^--?[A-Za-z][\w-]*$", option) and option not in command.options:
            return f"`{shown} {option}`: no such option (has: {', '.join(sorted(command.options))})"
    return None


def check_commands(
    invocations: list[Invocation], targets: set[str], cli: Mapping[str, CliCommand]
) -> list[Finding]:
    """Unknown make targets, promptctl commands, subcommands and options."""
    findings = []
    for inv in invocations:
        if inv.tool == "make":
            words = _words(inv)
            target = words[0] if words else None
            if target is None or not re.match(r"^[a-z][\w.-]*$", target):
                continue  # `make` alone (the default goal) or a placeholder
            if target not in targets:
                findings.append(
                    Finding(inv.line, f"`make {target}`: the Makefile has no such target")
                )
            continue
        words = [w for w in inv.words if w != "\\"]
        if not words or words[0].startswith("-"):
            continue  # `promptctl --help`, or the program named in prose
        name = words[0]
        if not re.match(r"^[a-z][\w-]*$", name):
            continue  # a placeholder such as COMMAND or <command>
        if name not in cli:
            findings.append(Finding(inv.line, f"`promptctl {name}`: the CLI has no such command"))
            continue
        command, shown, rest = cli[name], f"promptctl {name}", words[1:]
        if command.subcommands is not None:
            positional = [w for w in rest if not w.startswith("-")]
            if not positional or not re.match(r"^[a-z][\w-]*$", positional[0]):
                continue
            sub = positional[0]
            if sub not in command.subcommands:
                has = ", ".join(sorted(command.subcommands))
                findings.append(
                    Finding(inv.line, f"`{shown} {sub}`: no such subcommand (has: {has})")
                )
                continue
            command, shown = command.subcommands[sub], f"{shown} {sub}"
            rest = rest[rest.index(sub) + 1 :]
        problem = _check_options(shown, command, rest)
        if problem:
            findings.append(Finding(inv.line, problem))
    return findings
