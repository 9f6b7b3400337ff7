"""`promptctl eval` end to end, in process: embedded answerer and model, Qdrant in memory."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from promptctl.evaluation import parse_evalset
from promptctl.main import app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVALSET = ROOT / "evals" / "policy-qa.yaml"
SHIPPED = ["eval", str(EVALSET), "--baseline", "1.0.0", "--candidate", "1.1.0"]


def service_env(prompts_dir: Path) -> dict[str, str]:
    """The in-process service with its embedded defaults, whatever the outer environment."""
    return {
        "PROMPTS_DIR": str(prompts_dir),
        "PROMPT_SOURCE": "files",
        "CORPUS_DIR": str(ROOT / "data" / "policies"),
        "QDRANT_PATH": ":memory:",
        "QDRANT_URL": "",
        "MODEL_BASE_URL": "",
        "EMBEDDING_BASE_URL": "",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
    }


def covered_ids() -> set[str]:
    """Cases of the shipped set that expect an answer (not the emptyAnswer)."""
    cases = parse_evalset(EVALSET.read_text(encoding="utf-8")).cases
    return {c.id for c in cases if c.expect.outcome != ["unknown"]}


def regressed_ids(report: str) -> set[str]:
    return set(re.findall(r"^\| `([^`]+)` \| regression \|", report, flags=re.MULTILINE))


@pytest.fixture
def prompts_with_candidate(tmp_path: Path) -> Path:
    """1.0.0 as shipped and a candidate 2.0.0 whose minScore no question reaches."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    shutil.copy(ROOT / "prompts" / "policy-qa-1.0.0.yaml", folder)
    manifest: dict[str, Any] = yaml.safe_load(
        (ROOT / "prompts" / "policy-qa-1.0.0.yaml").read_text(encoding="utf-8")
    )
    manifest["metadata"]["name"] = "policy-qa-2-0-0"
    manifest["spec"]["version"] = "2.0.0"
    manifest["spec"]["retrieval"]["minScore"] = 0.99
    (folder / "policy-qa-2.0.0.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return folder


def test_shipped_eval_set_passes_on_both_shipped_versions(tmp_path: Path) -> None:
    report_file = tmp_path / "report.md"
    result = CliRunner().invoke(
        app,
        [*SHIPPED, "--output", str(report_file)],
        env=service_env(ROOT / "prompts"),
    )
    assert result.exit_code == 0, result.output
    report = report_file.read_text(encoding="utf-8")
    cases = len(parse_evalset(EVALSET.read_text(encoding="utf-8")).cases)
    assert f"**PASS: no regressions; 1.1.0 passes {cases}/{cases}, 1.0.0 passes" in report
    assert f"| Passed | {cases}/{cases} (100.0%) | {cases}/{cases} (100.0%) | +0.0 pp |" in report
    assert "## Regressions (0)" in report
    assert "PASS: no regressions" in result.stderr
    assert result.stdout == ""


def test_a_regressing_candidate_fails_and_names_the_cases(prompts_with_candidate: Path) -> None:
    args = ["eval", str(EVALSET), "--baseline", "1.0.0", "--candidate", "2.0.0"]
    env = service_env(prompts_with_candidate)
    runner = CliRunner()

    failed = runner.invoke(app, args, env=env)
    assert failed.exit_code == 1, failed.output
    report = failed.stdout
    assert regressed_ids(report) == covered_ids()
    assert report.index("## Regressions") < report.index("## Improvements")
    assert "outcome: got unknown, expected answered or fallback" in report
    assert "| `off-topic-capital` | same-pass | ✓ unknown | ✓ unknown |" in report
    assert f"FAIL: {len(covered_ids())} regression(s) (digital-refund-two-weeks," in failed.stderr

    tolerated = runner.invoke(app, [*args, "--no-fail-on-regression"], env=env)
    assert tolerated.exit_code == 0, tolerated.output
    assert regressed_ids(tolerated.stdout) == covered_ids()


def test_an_unknown_version_names_the_loaded_ones() -> None:
    result = CliRunner().invoke(
        app,
        ["eval", str(EVALSET), "--baseline", "1.0.0", "--candidate", "3.0.0"],
        env=service_env(ROOT / "prompts"),
    )
    assert result.exit_code == 2, result.output
    assert "policy-qa has no version 3.0.0; loaded versions: 1.0.0, 1.1.0" in result.stderr
    assert result.stdout == ""


def test_an_unknown_prompt_names_the_loaded_ones(tmp_path: Path) -> None:
    evalset = tmp_path / "other.yaml"
    evalset.write_text(
        "prompt: billing-qa\ncases:\n  - id: a\n    question: q\n    expect: {outcome: unknown}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app,
        ["eval", str(evalset), "--baseline", "1.0.0", "--candidate", "1.1.0"],
        env=service_env(ROOT / "prompts"),
    )
    assert result.exit_code == 2, result.output
    loaded = "loaded prompts: faq-bot, policy-qa, ticket-summarizer"
    assert f"prompt 'billing-qa' is not loaded; {loaded}" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "prompt: policy-qa\ncases:\n  - id: refund\n    question: q\n"
            "    expect: {outcome: answerd}\n",
            "case 'refund' expect.outcome[0]: Input should be 'answered'",
        ),
        (
            "prompt: policy-qa\ncases:\n  - id: refund\n    question: q\n"
            "    expect: {contains: [x]}\n",
            "case 'refund' expect.contains: Extra inputs are not permitted",
        ),
        (None, "cannot read"),
    ],
    ids=["bad-outcome", "unknown-check", "missing-file"],
)
def test_bad_input_exits_2_naming_the_problem(
    tmp_path: Path, content: str | None, message: str
) -> None:
    evalset = tmp_path / "evalset.yaml"
    if content is not None:
        evalset.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["eval", str(evalset), "--baseline", "1.0.0", "--candidate", "1.1.0"],
        env=service_env(ROOT / "prompts"),
    )
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stdout == ""


def test_an_output_folder_that_does_not_exist_is_bad_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [*SHIPPED, "--output", str(tmp_path / "missing" / "report.md")],
        env=service_env(ROOT / "prompts"),
    )
    assert result.exit_code == 2, result.output
    assert "is not a folder" in result.stderr
