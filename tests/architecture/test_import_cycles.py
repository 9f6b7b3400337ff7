"""No import cycles between the project's modules.

A module-level import is an edge, including those under ``if TYPE_CHECKING:`` (a
type-only cycle is still a tangle: the modules cannot be read, or moved, apart); imports
inside functions are not. Importing ``a.b.c`` also runs the packages ``a.b`` and ``a``
first, so it is an edge to each of those ``__init__`` modules too (except the importer's
own packages, already running; and not for imports under ``if TYPE_CHECKING:``, which
run nothing): a front door (``service/retrieval/__init__.py``) that
re-exports from a module which, through others, imports anything in that room again is a
cycle. Any strongly connected group of two or more modules is a cycle and fails here.
Run ``python -m tests.architecture.test_import_cycles`` to print the cycles found.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["build_import_graph", "find_cycles", "package_edges"]

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "api",
    "prompting",
    "service",
    "controller",
    "promptctl",
    "fakemodel",
    "rehearsal",
    "bench",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(
    body: list[ast.stmt], type_only: bool = False
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Imports at module level (also under `if`, `try` and `with`), not in functions, each
    with whether it is for type checkers only (under ``if TYPE_CHECKING:``)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, type_only
        elif isinstance(node, ast.If):
            yield from _top_level_imports(node.body, type_only or _is_type_checking(node))
            yield from _top_level_imports(node.orelse, type_only)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _top_level_imports(block, type_only)
            for handler in node.handlers:
                yield from _top_level_imports(handler.body, type_only)
        elif isinstance(node, ast.With):
            yield from _top_level_imports(node.body, type_only)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    yield base
    for alias in node.names:
        yield f"{base}.{alias.name}"  # `from pkg import submodule`


def package_edges(importer: str, target: str) -> Iterator[str]:
    """The packages importing `target` runs first, less the importer's own (already running)."""
    own = importer.split(".")
    parts = target.split(".")
    for size in range(1, len(parts)):
        if parts[:size] != own[:size]:
            yield ".".join(parts[:size])


def build_import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the project modules it imports at module level."""
    files = {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
    }
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node, type_only in _top_level_imports(tree.body):
            for target in _targets(node, module, is_package):
                if target in files and target != module:
                    edges.add(target)
                    if not type_only:  # a type checker runs no package __init__
                        edges.update(p for p in package_edges(module, target) if p in files)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def test_the_graph_sees_the_service_modules() -> None:
    graph = build_import_graph()
    assert "service.answering.pipeline" in graph
    assert "service.catalog.catalog" in graph["service.answering.pipeline"]


def test_importing_a_submodule_runs_its_packages_first() -> None:
    assert list(package_edges("promptctl.index", "service.retrieval.chunking")) == [
        "service",
        "service.retrieval",
    ]
    assert list(package_edges("service.llm.extractive", "service.retrieval.passages")) == [
        "service.retrieval"
    ]
    assert list(package_edges("service.retrieval.search", "service.retrieval.embeddings")) == []


def test_a_front_door_is_an_edge_of_every_import_through_it() -> None:
    graph = build_import_graph()
    assert "service.retrieval" in graph["promptctl.index"]
    assert "service.retrieval.indexing" in graph["service.retrieval"]


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert find_cycles(build_import_graph()) == []


if __name__ == "__main__":
    for cycle in find_cycles(build_import_graph()):
        print(" <-> ".join(cycle))
