"""`promptctl eval` end to end, in process: embedded answerer and model, Qdrant in memory."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from qdrant_client import AsyncQdrantClient
from typer.testing import CliRunner

from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.faults import Faults
from promptctl.main import app
from prompting.evals.evalset import parse_evalset
from tests.support.servers import serve_in_thread

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
    rate = f"{cases}/{cases} (100.0% weighted)"  # one case weighs 2
    assert f"| Passed | {rate} | {rate} | +0.0 pp |" in report
    assert "## Regressions (0)" in report
    assert "PASS: no regressions" in result.stderr
    assert result.stdout == ""


def test_a_regressing_candidate_fails_and_names_the_cases(
    prompts_with_candidate: Path, tmp_path: Path
) -> None:
    args = ["eval", str(EVALSET), "--baseline", "1.0.0", "--candidate", "2.0.0"]
    env = service_env(prompts_with_candidate)
    runner = CliRunner()
    stored = tmp_path / "run.json"

    failed = runner.invoke(app, [*args, "--json", str(stored)], env=env)
    assert failed.exit_code == 1, failed.output
    report = failed.stdout
    assert regressed_ids(report) == covered_ids()
    assert report.index("## Regressions") < report.index("## Improvements")
    assert "outcome: got unknown, expected answered or fallback" in report
    assert "| `off-topic-capital` | same-pass | ✓ unknown | ✓ unknown |" in report
    assert f"FAIL: {len(covered_ids())} regression(s) (digital-refund-two-weeks," in failed.stderr

    # Tolerating regressions still leaves the pass-rate gate (weighted: one case weighs 2).
    cases = parse_evalset(EVALSET.read_text(encoding="utf-8")).cases
    total = sum(c.weight for c in cases)
    passed = sum(c.weight for c in cases if c.id not in covered_ids())
    below = runner.invoke(app, [*args, "--no-fail-on-regression"], env=env)
    assert below.exit_code == 1, below.output
    assert (
        f"FAIL: the candidate passes {passed:g} (weighted), fewer than --min-pass-rate 1 x "
        f"the baseline's {total:g} = {total:g}" in below.stderr
    )

    floor = f"{passed / total:.4f}"
    tolerated = runner.invoke(
        app, [*args, "--no-fail-on-regression", "--min-pass-rate", floor], env=env
    )
    assert tolerated.exit_code == 0, tolerated.output
    assert f"PASS: {len(covered_ids())} regression(s) tolerated" in tolerated.stderr

    # The stored run stands in for the baseline: 1.0.0 need not be served any more.
    (prompts_with_candidate / "policy-qa-1.0.0.yaml").unlink()
    again = runner.invoke(
        app,
        [*args, "--baseline-report", str(stored), "--markdown", str(tmp_path / "c.md")],
        env=env,
    )
    assert again.exit_code == 1, again.output
    comment = (tmp_path / "c.md").read_text(encoding="utf-8")
    assert regressed_ids(comment) == covered_ids()
    assert f"(baseline from `{stored}`)" in comment
    assert again.stdout == ""


def test_invalid_versions_are_a_setup_error_not_a_pass() -> None:
    """No corpus: both versions are Invalid (their collection does not exist)."""
    env = service_env(ROOT / "prompts") | {"CORPUS_DIR": ""}
    result = CliRunner().invoke(app, SHIPPED, env=env)
    assert result.exit_code == 2, result.output
    assert (
        "policy-qa 1.0.0 cannot be served: it is Invalid (retrieval.collection 'policies' "
        "does not exist); policy-qa 1.1.0 cannot be served: it is Invalid" in result.stderr
    )
    assert "PASS" not in result.output
    assert result.stdout == ""


@pytest.fixture
def failing_model() -> Any:
    """A fake model that answers every chat request with 503."""
    state = FakeModelState(faults=Faults(status=503))
    with serve_in_thread(create_fake_model_app(state)) as url:
        yield f"{url}/v1"


def test_a_model_that_never_answers_fails_the_run(failing_model: str) -> None:
    """Covered cases error on both versions: no regression, yet never a pass."""
    env = service_env(ROOT / "prompts") | {
        "MODEL_BASE_URL": failing_model,
        "MODEL_MAX_ATTEMPTS": "1",
    }
    result = CliRunner().invoke(app, SHIPPED, env=env)
    assert result.exit_code == 1, result.output
    assert f"FAIL: {len(covered_ids())} case(s) got no answer from the candidate" in result.stderr
    assert "first: HTTP 503" in result.stderr
    assert "| `digital-refund-two-weeks` | same-fail |" in result.stdout


def test_a_locked_local_store_gets_the_index_sentence_and_url_advice(tmp_path: Path) -> None:
    store = tmp_path / "qdrant"
    store.mkdir()
    env = service_env(ROOT / "prompts") | {"QDRANT_PATH": str(store), "CORPUS_DIR": ""}
    holder = AsyncQdrantClient(path=str(store))
    try:
        indexed = CliRunner().invoke(
            app, ["index", str(ROOT / "data" / "policies"), "--collection", "p"], env=env
        )
        evaluated = CliRunner().invoke(app, SHIPPED, env=env)
    finally:
        asyncio.run(holder.close())
    sentence = indexed.stderr.removeprefix("error:").strip()
    assert "in use by another process" in sentence
    assert evaluated.exit_code == 2, evaluated.output
    assert sentence in evaluated.stderr
    assert "--url" in evaluated.stderr
    assert "Traceback" not in evaluated.output
    assert evaluated.stdout == ""


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
    loaded = "loaded prompts: faq-bot, order-status, policy-qa, ticket-summarizer"
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
