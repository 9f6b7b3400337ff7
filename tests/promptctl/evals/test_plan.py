"""The prompts workflow's plan: which eval sets run, against which versions."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from promptctl.evals.plan import PlannedEval, decide_plan, main

ROOT = Path(__file__).resolve().parents[3]
SPEC = {"template": "t"}
EVALSETS = {"policy-qa": "evals/policy-qa.yaml", "faq-bot": "evals/faq-bot.yaml"}


@pytest.mark.parametrize(
    ("base", "head", "changed", "plan", "problems"),
    [
        (
            {("policy-qa", "1.0.0"): SPEC, ("policy-qa", "1.1.0"): SPEC},
            {
                ("policy-qa", "1.0.0"): SPEC,
                ("policy-qa", "1.1.0"): SPEC,
                ("policy-qa", "1.2.0"): SPEC,
            },
            {"policy-qa"},
            [PlannedEval("policy-qa", "1.1.0", "1.2.0", "evals/policy-qa.yaml")],
            [],
        ),
        (
            {("policy-qa", "1.9.0"): SPEC},
            {("policy-qa", "1.9.0"): SPEC, ("policy-qa", "1.10.0"): SPEC},
            {"policy-qa"},
            [PlannedEval("policy-qa", "1.9.0", "1.10.0", "evals/policy-qa.yaml")],
            [],
        ),
        (
            {},
            {("faq-bot", "1.0.0"): SPEC},
            {"faq-bot"},
            [PlannedEval("faq-bot", "1.0.0", "1.0.0", "evals/faq-bot.yaml")],
            [],
        ),
        ({("faq-bot", "1.0.0"): SPEC}, {}, {"faq-bot"}, [], []),
        (
            {("policy-qa", "1.0.0"): SPEC},
            {("policy-qa", "1.0.0"): {"template": "edited"}},
            {"policy-qa"},
            [PlannedEval("policy-qa", "1.0.0", "1.0.0", "evals/policy-qa.yaml")],
            ["policy-qa 1.0.0: the spec of a released version changed; add a new version instead"],
        ),
        (
            {},
            {("summarizer", "1.0.0"): SPEC},
            {"summarizer"},
            [],
            ["summarizer changed but no eval set names it (evals/*.yaml)"],
        ),
        ({("policy-qa", "1.0.0"): SPEC}, {("policy-qa", "1.0.0"): SPEC}, set(), [], []),
    ],
    ids=[
        "new-version",
        "semver-not-text-order",
        "new-prompt-is-its-own-baseline",
        "removed-prompt",
        "released-spec-edited",
        "no-eval-set",
        "nothing-changed",
    ],
)
def test_decide_plan(
    base: dict[tuple[str, str], Any],
    head: dict[tuple[str, str], Any],
    changed: set[str],
    plan: list[PlannedEval],
    problems: list[str],
) -> None:
    assert decide_plan(base, head, changed, EVALSETS) == (plan, problems)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose main branch has policy-qa 1.0.0 and 1.1.0 and their eval set."""
    repo = tmp_path / "repo"
    (repo / "prompts").mkdir(parents=True)
    (repo / "evals").mkdir()
    for name in ("policy-qa-1.0.0.yaml", "policy-qa-1.1.0.yaml"):
        shutil.copy(ROOT / "prompts" / name, repo / "prompts")
    shutil.copy(ROOT / "evals" / "policy-qa.yaml", repo / "evals")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    git(repo, "checkout", "-qb", "pr")
    monkeypatch.chdir(repo)
    return repo


def add_version(repo: Path, version: str) -> None:
    manifest = yaml.safe_load((repo / "prompts" / "policy-qa-1.1.0.yaml").read_text("utf-8"))
    manifest["metadata"]["name"] = f"policy-qa-{version.replace('.', '-')}"
    manifest["spec"]["version"] = version
    (repo / "prompts" / f"policy-qa-{version}.yaml").write_text(yaml.safe_dump(manifest), "utf-8")


def test_a_new_version_in_the_working_tree_is_planned(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_version(repo, "1.2.0")  # untracked: a local run before committing sees it too
    assert main(["--base", "main"]) == 0
    assert capsys.readouterr().out == "policy-qa\t1.1.0\t1.2.0\tevals/policy-qa.yaml\n"


def test_nothing_changed_plans_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--base", "main"]) == 0
    assert capsys.readouterr().out == ""


def test_an_edited_release_stops_the_plan(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = repo / "prompts" / "policy-qa-1.1.0.yaml"
    path.write_text(
        path.read_text("utf-8").replace("temperature: 0.2", "temperature: 0.3"), "utf-8"
    )
    assert main(["--base", "main"]) == 2
    assert "policy-qa 1.1.0: the spec of a released version changed" in capsys.readouterr().err


def test_an_unknown_base_is_a_sentence(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--base", "origin/nowhere"]) == 2
    assert "error: git cannot compare with origin/nowhere" in capsys.readouterr().err
