"""The Dockerfile and .dockerignore, read as Docker reads them (no engine needed).

dockerfile-parse splits the Dockerfile into instructions; ``parse_dockerfile`` groups them
into stages. pathspec matches .dockerignore (see the note above ``parse_dockerignore`` on
why its gitignore patterns, anchored at the root, give Docker's meaning). The helpers
below pick out what the image tests check: COPY sources, ENV, the simple commands of a
RUN, pip and apt-get invocations.
"""

from __future__ import annotations

import io
import json
import posixpath
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pathspec
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]
from dockerfile_parse.util import extract_key_values  # type: ignore[import-untyped]
from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

__all__ = [
    "DOCKERFILE",
    "DOCKERIGNORE",
    "ROOT",
    "RUNTIME_LOCK",
    "Copy",
    "Dockerfile",
    "Instruction",
    "Stage",
    "apt_installs",
    "commands_of",
    "context_files",
    "copies_of",
    "env_of",
    "is_ignored",
    "key_values",
    "parse_dockerfile",
    "parse_dockerignore",
    "pip_installs",
    "pip_options",
    "shell_words",
]

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
RUNTIME_LOCK = "requirements/runtime.lock"

# --- the Dockerfile, read by dockerfile-parse ---------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One instruction, continuation lines joined (1-based line of its first line)."""

    keyword: str
    value: str
    line: int


@dataclass
class Stage:
    """A ``FROM`` and the instructions up to the next one."""

    image: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass(frozen=True)
class Copy:
    """A COPY/ADD: its flags, sources and destination."""

    keyword: str
    flags: dict[str, str]
    sources: list[str]
    dest: str

    @property
    def from_stage(self) -> str | None:
        return self.flags.get("from")


@dataclass(frozen=True)
class Dockerfile:
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def parse_dockerfile(text: str) -> Dockerfile:
    """Stages and their instructions; global ARGs substituted in ``FROM`` only.

    Values stay as written (``env_replace=False``): the rules check ``${VERSION}`` and
    ``$PATH`` literally, which dockerfile-parse's own ``labels``/``envs`` would expand.
    """
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()), env_replace=False)
    images = iter(parser.parent_images)  # one per FROM, global ARGs substituted
    stages: list[Stage] = []
    for item in parser.structure:
        keyword, value, line = item["instruction"], item["value"], item["startline"] + 1
        if keyword == "FROM":
            words = [w for w in value.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(next(images), name, line))
        elif stages and keyword != "COMMENT":
            stages[-1].instructions.append(Instruction(keyword, value, line))
    return Dockerfile(stages)


def shell_words(value: str) -> list[str]:
    """Exec form (a JSON array) or shell words."""
    if value.startswith("["):
        loaded: list[str] = json.loads(value)
        return loaded
    return shlex.split(value)


def copies_of(stage: Stage) -> list[Copy]:
    copies = []
    for instruction in stage.instructions:
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        words = shell_words(instruction.value)
        flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
        paths = [w for w in words if not w.startswith("--")]
        copies.append(Copy(instruction.keyword, flags, paths[:-1], paths[-1]))
    return copies


def key_values(value: str) -> dict[str, str]:
    """ENV/LABEL pairs (``k=v k2="v 2"`` or the legacy ``k v``), variables unexpanded."""
    return dict(extract_key_values(False, {}, {}, value))


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        env |= key_values(instruction.value)
    return env


def commands_of(run: Instruction) -> list[list[str]]:
    """The simple commands of a RUN, split at ``&&``, ``||``, ``;`` and ``|``."""
    if run.value.startswith("["):
        return [shell_words(run.value)]
    lexer = shlex.shlex(run.value, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word in ("&&", "||", ";", "|", "&"):
            commands.append([])
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


def pip_installs(stage: Stage) -> list[list[str]]:
    """The words after ``install`` of every ``pip install`` in the stage."""
    installs = []
    for run in stage.all("RUN"):
        for command in commands_of(run):
            is_pip = [
                i
                for i, w in enumerate(command)
                if posixpath.basename(w) in ("pip", "pip3")
                or (w == "-m" and command[i + 1 : i + 2] == ["pip"])
            ]
            if is_pip and "install" in command[is_pip[0] :]:
                installs.append(command[command.index("install", is_pip[0]) + 1 :])
    return installs


def apt_installs(stage: Stage) -> list[tuple[Instruction, list[str]]]:
    return [
        (run, command)
        for run in stage.all("RUN")
        for command in commands_of(run)
        if command[:1] in (["apt-get"], ["apt"]) and "install" in command
    ]


_PIP_VALUE_OPTIONS = frozenset(
    {"-r", "--requirement", "-c", "--constraint", "-t", "--target", "--prefix", "--root"}
    | {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--python"}
)


def pip_options(words: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Options with values (``-r x``, ``--requirement=x``) and positional targets."""
    options: dict[str, list[str]] = {}
    targets: list[str] = []
    pending: str | None = None
    for word in words:
        if pending is not None:
            options.setdefault(pending, []).append(word)
            pending = None
        elif word.startswith("--") and "=" in word:
            name, _, value = word.partition("=")
            options.setdefault(name, []).append(value)
        elif word in _PIP_VALUE_OPTIONS:
            pending = word
        elif word.startswith("-"):
            options.setdefault(word, [])
        else:
            targets.append(word)
    return options, targets


# --- .dockerignore, matched by pathspec ---------------------------------------------------
#
# Docker (moby's patternmatcher) reads each line as a Go ``filepath.Match`` pattern over the
# path relative to the context root, after ``filepath.Clean`` and with a leading ``/``
# dropped; ``**`` spans directories, ``!`` re-includes, the last matching line wins, and a
# pattern that matches a parent directory matches everything below it. pathspec's
# ``GitIgnoreBasicPattern`` (gitignore as documented; pathspec 1.x deprecates the old
# ``GitWildMatchPattern`` name for the same rules) agrees on ``*``/``?``/``[...]`` not
# crossing ``/``, on ``**``, on ``!`` with last-match-wins (a file below an excluded
# directory can be re-included, as Docker allows), and on a match of a directory covering
# its contents. The difference that matters for us: gitignore matches a pattern without a
# ``/`` (``tests``, ``var``, ``*.log``, ``build``) at any depth, Docker only at the root.
# Anchoring every line with ``/`` after Docker's clean-up gives Docker's meaning. Unused
# by our file and not modelled: Go's ``\\`` escapes on Windows paths.


def parse_dockerignore(text: str) -> pathspec.PathSpec[GitIgnoreBasicPattern]:
    """The patterns of a .dockerignore, as Docker reads them (see above)."""
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = "!" if line.startswith("!") else ""
        pattern = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
        lines.append(f"{negated}/{pattern}")
    return pathspec.PathSpec.from_lines(GitIgnoreBasicPattern, lines)


def is_ignored(rules: pathspec.PathSpec[GitIgnoreBasicPattern], path: str) -> bool:
    """Whether the build context leaves `path` (relative, POSIX) out."""
    return rules.match_file(path)


def context_files(source: str) -> list[Path]:
    path = ROOT / source
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [f for f in files if "__pycache__" not in f.parts]
