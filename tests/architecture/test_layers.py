"""The arrows between packages point down (docs/architecture.md, "Rooms and arrows").

```
promptctl ──► prompting, api, fakemodel, and the service's front doors
controller ─► prompting, api                 (never service, never promptctl)
service ────► prompting, api                 (never controller, never promptctl)
prompting ──► api                            (pure: no I/O library at all)
api ────────► nothing of ours
```

Every import counts here, also one inside a function (a lazy import is still a
dependency). The service's front doors are its entry-point modules (``service.app``,
``service.settings``, ``service.errors``) and each room's package (``service.retrieval``,
``service.llm`` …), whose ``__init__`` re-exports in ``__all__`` what outsiders may use;
the modules inside a room are the service's own business.
Run ``python -m tests.architecture.test_layers`` to print every violation.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["Import", "find_imports", "find_violations"]

ROOT = Path(__file__).resolve().parents[2]
OURS = ("api", "prompting", "service", "controller", "promptctl", "fakemodel", "bench", "tests")
ROOMS = ("http", "answering", "catalog", "retrieval", "llm", "telemetry")
#: Modules of the service that outsiders may import, besides each room's package.
SERVICE_ENTRY_POINTS = frozenset({"service.app", "service.settings", "service.errors"})
FRONT_DOORS = frozenset({f"service.{room}" for room in ROOMS})
#: Libraries (and their submodules) that talk to the world: prompting/ (pure domain)
#: imports none of them.
IO_LIBRARIES = frozenset(
    {
        "aiohttp",
        "asyncio",
        "fastapi",
        "http.client",
        "http.server",
        "httpx",
        "io",
        "kopf",
        "kubernetes",
        "kubernetes_asyncio",
        "logging",
        "onnxruntime",
        "opentelemetry",
        "os",
        "pathlib",
        "prometheus_client",
        "qdrant_client",
        "redis",
        "requests",
        "shutil",
        "socket",
        "ssl",
        "starlette",
        "subprocess",
        "tempfile",
        "tokenizers",
        "urllib.request",
        "uvicorn",
    }
)
#: Which of our packages each package may import (its own always).
ALLOWED = {
    "api": frozenset(),
    "prompting": frozenset({"api"}),
    "controller": frozenset({"api", "prompting"}),
    "service": frozenset({"api", "prompting"}),
    "promptctl": frozenset({"api", "prompting", "fakemodel", "rehearsal", "service"}),
    "fakemodel": frozenset({"api", "prompting"}),
    #: The rehearsal stand-ins (emulator, Prometheus, processes) run the others as processes.
    "rehearsal": frozenset({"api", "controller", "fakemodel"}),
    #: The quality simulation drives the controller's pure assess/decide.
    "bench": frozenset({"api", "prompting", "service", "controller", "fakemodel"}),
}


@dataclass(frozen=True)
class Import:
    """One import statement's target in one module: `target` and, for ``from x import a``,
    the imported `name`."""

    module: str
    line: int
    target: str
    name: str | None = None

    def __str__(self) -> str:
        what = f"from {self.target} import {self.name}" if self.name else f"import {self.target}"
        return f"{self.module}:{self.line}: {what}"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_imports(package: str, root: Path = ROOT) -> Iterator[Import]:
    """Every import in every module of `package`, at any depth (also inside functions)."""
    for path in sorted((root / package).rglob("*.py")):
        module = _module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(module, node.lineno, alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".")
                    if path.name != "__init__.py":
                        anchor = anchor[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    yield Import(module, node.lineno, base, alias.name)


def _is_io(target: str) -> bool:
    return any(target == lib or target.startswith(f"{lib}.") for lib in IO_LIBRARIES)


def _front_door_names(door: str) -> frozenset[str]:
    return frozenset(getattr(importlib.import_module(door), "__all__", ()))


def find_violations(package: str, root: Path = ROOT) -> list[str]:
    """Each import of `package` that breaks the arrows, as ``module:line: import … (why)``."""
    found: list[str] = []
    for imp in find_imports(package, root):
        top = imp.target.split(".")[0]
        if package == "prompting" and _is_io(imp.target):
            found.append(f"{imp} (prompting/ is pure: no I/O library)")
            continue
        if top not in OURS or top == package:
            continue
        if top not in ALLOWED[package]:
            found.append(f"{imp} ({package}/ never imports {top}/)")
        elif package == "promptctl" and top == "service":
            why = _promptctl_service_violation(imp)
            if why:
                found.append(f"{imp} ({why})")
    return found


def _promptctl_service_violation(imp: Import) -> str | None:
    if imp.target in SERVICE_ENTRY_POINTS:
        return None
    if imp.target in FRONT_DOORS:
        if imp.name is not None and imp.name not in _front_door_names(imp.target):
            return f"{imp.name} is not in {imp.target}.__all__: add it to the front door"
        return None
    if imp.target == "service" and f"service.{imp.name}" in SERVICE_ENTRY_POINTS | FRONT_DOORS:
        return None
    return "a service internal: import it from its room's front door (service.<room>)"


# --- The rules ------------------------------------------------------------------------


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_the_arrows_point_down(package: str) -> None:
    assert find_violations(package) == []


def test_promptctl_uses_only_the_service_front_doors() -> None:
    service_imports = [i for i in find_imports("promptctl") if i.target.startswith("service")]
    assert service_imports, "promptctl imports the service: the rule must see those imports"
    assert find_violations("promptctl") == []


def test_each_front_door_exports_what_it_imports() -> None:
    for door in sorted(FRONT_DOORS):
        names = _front_door_names(door)
        module = importlib.import_module(door)
        assert all(hasattr(module, name) for name in names), door


def test_nothing_outside_tests_imports_tests() -> None:
    for package in ALLOWED:
        assert [str(i) for i in find_imports(package) if i.target.split(".")[0] == "tests"] == []


# --- The rules catch what they are for -------------------------------------------------


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("package", "relative", "source", "expected"),
    [
        (
            "controller",
            "controller/lazy.py",
            "def f():\n    from service.settings import Settings\n",
            "controller/ never imports service/",
        ),
        (
            "controller",
            "controller/cli.py",
            "import promptctl.main\n",
            "controller/ never imports promptctl/",
        ),
        (
            "promptctl",
            "promptctl/inner.py",
            "from service.retrieval.indexing import index_documents\n",
            "a service internal",
        ),
        (
            "promptctl",
            "promptctl/unexported.py",
            "from service.retrieval import Retriever\n",
            "Retriever is not in service.retrieval.__all__",
        ),
        (
            "promptctl",
            "promptctl/ctl.py",
            "from controller.rollout import decide\n",
            "promptctl/ never imports controller/",
        ),
        (
            "prompting",
            "prompting/net.py",
            "import httpx\n",
            "prompting/ is pure",
        ),
        (
            "prompting",
            "prompting/store.py",
            "from redis.asyncio import Redis\n",
            "prompting/ is pure",
        ),
        (
            "prompting",
            "prompting/up.py",
            "from service.errors import ServiceError\n",
            "prompting/ never imports service/",
        ),
        (
            "service",
            "service/ops.py",
            "from controller import rollout\n",
            "service/ never imports controller/",
        ),
    ],
    ids=[
        "controller-lazy-service",
        "controller-promptctl",
        "promptctl-room-internal",
        "promptctl-name-not-exported",
        "promptctl-controller",
        "prompting-httpx",
        "prompting-redis",
        "prompting-service",
        "service-controller",
    ],
)
def test_a_wrong_arrow_is_reported(
    tmp_path: Path, package: str, relative: str, source: str, expected: str
) -> None:
    _write(tmp_path, relative, source)
    (violation,) = find_violations(package, tmp_path)
    assert expected in violation
    assert violation.startswith(relative.removesuffix(".py").replace("/", "."))


@pytest.mark.parametrize(
    "source",
    [
        "from service.retrieval import index_documents\n",
        "from service import settings\n",
        "from service.settings import Settings\n",
        "from service.llm import ResilientChatModel\n",
        "from api.v1alpha1 import PromptVersion\n",
        "from prompting.rendering import render_messages\n",
    ],
    ids=["front-door", "entry-module-from-package", "entry-module", "llm", "api", "prompting"],
)
def test_a_right_arrow_passes(tmp_path: Path, source: str) -> None:
    _write(tmp_path, "promptctl/ok.py", source)
    assert find_violations("promptctl", tmp_path) == []


if __name__ == "__main__":
    for name in sorted(ALLOWED):
        for violation in find_violations(name):
            print(violation)
