"""Every Markdown file renders as meant, links where it says, and shows only real commands.

The commands are checked against the real Makefile and the real typer app
(``promptctl.main.app``), so a command added to either is known here at once, and a
doc showing one that does not exist fails with its file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main

from promptctl.main import app
from tests.docs.markdown import (
    CliCommand,
    Finding,
    Invocation,
    check_commands,
    check_fences,
    check_links,
    find_invocations,
    heading_anchors,
    makefile_targets,
)

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {".git", ".venv", ".venv-helm", "node_modules", "var", "build", "dist"}


def markdown_files() -> list[Path]:
    """Every *.md of the repository (README, CHANGELOG, docs/, the chart's README, …)."""
    return sorted(
        path
        for path in ROOT.rglob("*.md")
        if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts[:-1])
        and not any(part.startswith(".") for part in path.relative_to(ROOT).parts[:-1])
    )


def _describe(command: Any) -> CliCommand:
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    options |= {"--help"}
    options = {o for o in options if o.startswith("-")}
    subcommands = getattr(command, "commands", None)
    return CliCommand(
        frozenset(options),
        {name: _describe(sub) for name, sub in subcommands.items()} if subcommands else None,
    )


def cli_tree() -> dict[str, CliCommand]:
    """promptctl's commands, subcommands and options, read from the typer app."""
    # typer vendors its own click: groups are recognised by their `commands` mapping.
    root = typer.main.get_command(app)
    commands: dict[str, Any] = getattr(root, "commands", {})
    assert commands, "promptctl.main.app has no commands"
    return {name: _describe(command) for name, command in commands.items()}


TARGETS = makefile_targets((ROOT / "Makefile").read_text(encoding="utf-8"))
FILES = markdown_files()
IDS = [str(path.relative_to(ROOT)) for path in FILES]


def _report(path: Path, findings: list[Finding]) -> str:
    where = path.relative_to(ROOT)
    return "\n".join(f"{where}:{f.line}: {f.message}" for f in findings)


def test_the_checks_see_the_docs() -> None:
    # A check that evaluated nothing would pass anything.
    assert {"README.md", "docs/architecture.md", "charts/prompt-rollouts/README.md"} <= set(IDS)
    assert {"run", "test", "test-chart", "crds", "system-deps"} <= TARGETS
    assert {"lint", "render", "index", "eval", "fake-model", "status"} <= set(cli_tree())
    shown = [inv for path in FILES for inv in find_invocations(path.read_text(encoding="utf-8"))]
    assert sum(inv.tool == "make" for inv in shown) >= 10
    assert sum(inv.tool == "promptctl" for inv in shown) >= 20


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_code_fences_are_balanced(path: Path) -> None:
    findings = check_fences(path.read_text(encoding="utf-8"))
    assert not findings, _report(path, findings)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_relative_links_and_anchors_resolve(path: Path) -> None:
    findings = check_links(path, ROOT)
    assert not findings, _report(path, findings)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_every_make_and_promptctl_command_shown_exists(path: Path) -> None:
    findings = check_commands(
        find_invocations(path.read_text(encoding="utf-8")), TARGETS, cli_tree()
    )
    assert not findings, _report(path, findings)


# --- the checker itself: it must catch what it is for ---------------------------------


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("```\ncode\n``` Prose after the fence.\nmore\n```\n", 3, "text after a closing fence"),
        ("text\n```console\n$ make run\n", 2, "never closed"),
        ("````md\n```\ninner\n```\n````\n```\n", 6, "never closed"),
    ],
    ids=["inside-out", "unclosed", "longer-fence"],
)
def test_fence_check_names_the_line(text: str, line: int, words: str) -> None:
    findings = check_fences(text)
    assert [f.line for f in findings] == [line]
    assert words in findings[0].message


def test_fence_check_accepts_nested_and_tilde_fences() -> None:
    assert check_fences("~~~\n```\n~~~\n\n````\n```sh\n```\n````\n") == []


def test_link_check_finds_missing_files_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Title\n\n## The `model` field\n## Title\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#the-model-field) [dup](other.md#title-1) [self](#local)\n"
        "# Local\n"
        "[gone](missing.md) [bad anchor](other.md#nope)\n"
        "`[not a link](missing.md)` [web](https://example.com/x#y)\n"
        "```\n[in code](missing.md)\n```\n"
    )
    findings = check_links(page, tmp_path)
    assert [(f.line, f.message.split(":")[0]) for f in findings] == [
        (3, "link to a missing file"),
        (3, "link to a missing anchor"),
    ]


def test_anchors_follow_github_slugs() -> None:
    text = "# A rollback happened\n## `cache`\n## Q&A — why?\n## Q&A — why?\n```\n# not\n```\n"
    assert heading_anchors(text) == {"a-rollback-happened", "cache", "qa--why", "qa--why-1"}


def test_invocations_are_found_in_shell_blocks_and_inline_code() -> None:
    text = (
        "Run `make test` or `.venv/bin/promptctl keys create --name x`.\n"
        "```console\n"
        "$ make run &   # make sure it runs\n"
        "output line mentioning make eval\n"
        "$ kubectl run x --command -- promptctl fake-model \\\n"
        "    --port 9000 && make lint\n"
        "```\n"
        "```sh\n"
        "python -m promptctl.main index data/ --prune  # comment: make nothing\n"
        "```\n"
        "```yaml\n"
        "args: [promptctl, lint]\n"
        "```\n"
    )
    assert [(i.tool, i.words[:2], i.line) for i in find_invocations(text)] == [
        ("make", ("run",), 3),
        ("promptctl", ("fake-model",), 5),
        ("make", ("lint",), 6),
        ("promptctl", ("index", "data/"), 9),
        ("make", ("test",), 1),
        ("promptctl", ("keys", "create"), 1),
    ]


def test_command_check_uses_the_given_truth() -> None:
    plain = CliCommand(frozenset({"--help", "--name"}))
    cli = {
        "index": CliCommand(frozenset({"--help", "--prune", "--collection", "-c"})),
        "keys": CliCommand(frozenset({"--help"}), {"create": plain, "list": plain}),
    }
    shown = [
        Invocation("make", ("run",), 1),
        Invocation("make", ("eval", "PYTEST_ARGS=-x"), 2),
        Invocation("make", ("<target>",), 3),
        Invocation("promptctl", ("index", "docs/", "--prune"), 4),
        Invocation("promptctl", ("diff", "a.yaml"), 5),
        Invocation("promptctl", ("keys", "create"), 6),
        Invocation("promptctl", ("keys", "--help"), 7),
        Invocation("promptctl", ("keys", "rotate"), 8),
        Invocation("promptctl", ("--help",), 9),
        Invocation("promptctl", ("index", "d/", "--colection=x"), 10),
        Invocation("promptctl", ("keys", "create", "--name", "a", "--nmae", "b"), 11),
        Invocation("promptctl", ("index", "d/", "-c", "x", "--", "--not-ours"), 12),
    ]
    findings = check_commands(shown, {"run", "test"}, cli)
    assert [(f.line, f.message.split(":")[0]) for f in findings] == [
        (2, "`make eval`"),
        (5, "`promptctl diff`"),
        (8, "`promptctl keys rotate`"),
        (10, "`promptctl index --colection`"),
        (11, "`promptctl keys create --nmae`"),
    ]
