"""scripts/prompt-ci.sh (the prompts workflow and `make eval`) in a throwaway repository."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.promptctl.evals.test_plan import add_version, git
from tests.promptctl.test_eval import service_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main has policy-qa 1.0.0 and 1.1.0 and their eval set; the work happens on `pr`."""
    repo = tmp_path / "repo"
    for folder in ("prompts", "evals", "scripts"):
        (repo / folder).mkdir(parents=True)
    for name in ("policy-qa-1.0.0.yaml", "policy-qa-1.1.0.yaml"):
        shutil.copy(ROOT / "prompts" / name, repo / "prompts")
    shutil.copy(ROOT / "evals" / "policy-qa.yaml", repo / "evals")
    shutil.copy(ROOT / "scripts" / "prompt-ci.sh", repo / "scripts")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    git(repo, "checkout", "-qb", "pr")
    return repo


def prompt_ci(repo: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = (
        os.environ
        | service_env(repo / "prompts")
        | {
            "BASE_REF": "main",
            "PYTHON": sys.executable,
            "PYTHONPATH": str(ROOT),
            "PROMPTS_DIR": "prompts",
        }
        | extra
    )
    return subprocess.run(
        ["bash", str(repo / "scripts" / "prompt-ci.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_nothing_changed_evaluates_nothing(repo: Path) -> None:
    done = prompt_ci(repo)
    assert done.returncode == 0, done.stderr
    comment = (repo / "eval-reports" / "comment.md").read_text(encoding="utf-8")
    assert comment == "No prompt or eval set changed: nothing to evaluate.\n"


def test_an_edited_release_fails_with_the_reason_in_the_comment(repo: Path) -> None:
    path = repo / "prompts" / "policy-qa-1.1.0.yaml"
    path.write_text(
        path.read_text("utf-8").replace("temperature: 0.2", "temperature: 0.3"), "utf-8"
    )
    done = prompt_ci(repo)
    assert done.returncode == 2, done.stdout + done.stderr
    comment = (repo / "eval-reports" / "comment.md").read_text(encoding="utf-8")
    assert "- error: policy-qa 1.1.0: the spec of a released version changed" in comment


def test_a_new_version_is_linted_evaluated_and_reported(repo: Path) -> None:
    add_version(repo, "1.2.0")
    done = prompt_ci(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-- policy-qa: 1.1.0 -> 1.2.0 (evals/policy-qa.yaml)" in done.stdout
    reports = repo / "eval-reports"
    comment = (reports / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith("# Eval: policy-qa 1.1.0 → 1.2.0\n\n**PASS: no regressions;")
    assert "<!-- promptctl-eval prompt=policy-qa -->" in comment
    assert {p.name for p in reports.iterdir()} >= {
        "policy-qa.md",
        "policy-qa.html",
        "policy-qa.xml",
        "policy-qa.json",
    }


def test_a_prompt_that_needs_a_model_is_evaluated_against_the_fake_model(repo: Path) -> None:
    # order-status declares spec.output and spec.tools: offline it could only end
    # invalid_output, so with no MODEL_BASE_URL the script starts the fake model for it
    # (and for it alone: policy-qa stays with the embedded answerer), and stops it after.
    add_version(repo, "1.2.0")
    shutil.copy(ROOT / "prompts" / "order-status-1.0.0.yaml", repo / "prompts")
    shutil.copy(ROOT / "evals" / "order-status.yaml", repo / "evals")

    done = prompt_ci(repo)

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "-- policy-qa: 1.1.0 -> 1.2.0 (evals/policy-qa.yaml)" in lines
    order = lines.index("-- order-status: 1.0.0 -> 1.0.0 (evals/order-status.yaml)")
    (notice,) = (line for line in lines if line.startswith("   needs a model"))
    assert lines[order + 1] == notice
    assert notice.startswith(
        "   needs a model: evaluating against the fake model at http://127.0.0.1:"
    )
    comment = (repo / "eval-reports" / "comment.md").read_text(encoding="utf-8")
    section = comment[comment.index("# Eval: order-status") :]
    assert section.startswith("# Eval: order-status 1.0.0 → 1.0.0\n\n**PASS: no regressions;")
    assert "passes 12/12" in section
    assert "evaluated against the fake model (`promptctl fake-model`)" in section
    assert "POST /v1/chat/completions" in (repo / "eval-reports" / "fake-model.log").read_text(
        encoding="utf-8"
    )
    port = int(notice.rsplit(":", 1)[1].removesuffix("/v1"))
    with socket.socket() as probe:  # stopped on exit: nothing listens any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_given_model_base_url_is_used_as_is(repo: Path) -> None:
    shutil.copy(ROOT / "prompts" / "order-status-1.0.0.yaml", repo / "prompts")
    shutil.copy(ROOT / "evals" / "order-status.yaml", repo / "evals")
    env_url = "http://127.0.0.1:9/v1"  # discard port: nothing answers

    done = prompt_ci(repo, MODEL_BASE_URL=env_url)

    assert "needs a model" not in done.stdout
    assert not (repo / "eval-reports" / "fake-model.log").exists()
    assert done.returncode != 0  # the given model is unreachable: the eval fails, honestly
