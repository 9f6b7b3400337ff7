"""`promptctl eval` writes every report format, repeats cases, judges rubrics with the fake
model; `promptctl diff` prints the spec diff. In process: embedded defaults, Qdrant in memory."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from junitparser import JUnitXml
from typer.testing import CliRunner

from fakemodel.app import FakeModelState, create_fake_model_app
from fakemodel.faults import Faults
from promptctl.main import app
from tests.promptctl.test_eval import ROOT, service_env
from tests.support.net import free_port
from tests.support.servers import serve_in_thread

pytestmark = pytest.mark.integration

SMALL = """\
prompt: policy-qa
cases:
  - id: digital-refund
    question: Can I refund a digital item after two weeks?
    weight: 2
    expect:
      outcome: [answered, fallback]
      cites_all: [digital-goods.md]
      contains_all: ["14 days"]
      regex: '\\[\\d+\\]'
      max_tokens: 300
      similar_to:
        text: Digital purchases can be refunded only within 14 days; after two weeks they cannot.
        min: 0.6
  - id: off-topic
    question: What is the capital of France?
    expect:
      outcome: unknown
      not:
        regex: '\\[\\d+\\]'
        similar_to: {text: Paris is the capital of France., min: 0.5}
"""


@pytest.fixture
def small_evalset(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path


def test_every_format_from_one_repeated_run(small_evalset: Path, tmp_path: Path) -> None:
    out = {kind: tmp_path / f"report.{kind}" for kind in ("md", "xml", "json", "html")}
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(small_evalset),
            "--baseline",
            "1.0.0",
            "--candidate",
            "1.1.0",
            "--repeat",
            "2",
            "--pass-quorum",
            "0.5",
            "--markdown",
            str(out["md"]),
            "--junit",
            str(out["xml"]),
            "--json",
            str(out["json"]),
            "--html",
            str(out["html"]),
        ],
        env=service_env(ROOT / "prompts"),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "PASS: no regressions; 1.1.0 passes 2/2, 1.0.0 passes 2/2" in result.stderr

    document = json.loads(out["json"].read_text(encoding="utf-8"))
    assert (document["repeat"], document["pass_quorum"]) == (2, 0.5)
    assert document["verdict"] == {"passed": True, "exit_code": 0, "reasons": []}
    runs = document["results"]["1.1.0"][0]["runs"]
    assert len(runs) == 2
    checks = {c["name"]: c for c in runs[0]["checks"]}
    assert set(checks) == {
        "outcome",
        "cites_all",
        "contains_all",
        "regex",
        "max_tokens",
        "similar_to",
    }
    assert checks["similar_to"]["score"] > 0.6
    off_topic = {c["name"]: c for c in document["results"]["1.1.0"][1]["runs"][0]["checks"]}
    assert off_topic["not similar_to"]["passed"] is True
    assert off_topic["not similar_to"]["score"] < 0.5

    xml = JUnitXml.fromfile(str(out["xml"]))
    assert (xml.tests, xml.failures, xml.errors) == (4, 0, 0)

    markdown = out["md"].read_text(encoding="utf-8")
    assert "Each case ran 2 times and passes when 0.5 of its runs pass" in markdown
    assert "| `digital-refund` | same-pass | ✓ answered 2/2 | ✓ answered 2/2 |" in markdown
    assert "+temperature: 0.2" in markdown

    html = out["html"].read_text(encoding="utf-8")
    charts: list[str] = []

    class Charts(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            charts.extend(v or "" for k, v in attrs if k == "data-chart")

    Charts().feed(html)
    assert charts == ["pass-rate-by-check", "latency", "cost-per-answer"]
    assert "+temperature: 0.2" in html
    assert "<script" not in html


@pytest.fixture
def fake_model() -> Iterator[str]:
    with serve_in_thread(create_fake_model_app(FakeModelState())) as url:
        yield f"{url}/v1"


RUBRIC = """\
prompt: policy-qa
cases:
  - id: digital-refund
    question: Can I refund a digital item after two weeks?
    expect:
      llm_rubric: {rubric: 'States the "14 days" window.', min: 1}
      not:
        llm_rubric: {rubric: 'Offers "store credit" instead.', min: 0.5}
"""


def test_llm_rubric_judged_by_the_fake_model(tmp_path: Path, fake_model: str) -> None:
    evalset = tmp_path / "rubric.yaml"
    evalset.write_text(RUBRIC, encoding="utf-8")
    report = tmp_path / "r.json"
    env = service_env(ROOT / "prompts") | {"MODEL_BASE_URL": fake_model}
    args = ["eval", str(evalset), "--baseline", "1.0.0", "--candidate", "1.1.0"]
    runner = CliRunner()

    judged = runner.invoke(
        app, [*args, "--judge-model", "gpt-4.1-nano", "--json", str(report)], env=env
    )
    assert judged.exit_code == 0, judged.output
    (run,) = json.loads(report.read_text(encoding="utf-8"))["results"]["1.1.0"][0]["runs"]
    scores = {c["name"]: c["score"] for c in run["checks"]}
    assert scores == {"llm_rubric": 1.0, "not llm_rubric": 0.0}

    unjudged = runner.invoke(app, args, env=env)
    assert unjudged.exit_code == 2, unjudged.output
    assert "llm_rubric checks need a judge: pass --judge-model NAME" in unjudged.stderr

    failing = RUBRIC.replace('"14 days" window', '"30 days" window')
    evalset.write_text(failing, encoding="utf-8")
    both_fail = runner.invoke(app, [*args, "--judge-model", "gpt-4.1-nano"], env=env)
    assert both_fail.exit_code == 1, both_fail.output
    assert "llm_rubric: judge score 0.000, below 1" in both_fail.stdout
    assert "the candidate passes no case" in both_fail.stderr


def test_diff_prints_the_spec_changes(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["diff", "policy-qa", "1.0.0", "1.1.0"], env={"PROMPTS_DIR": str(ROOT / "prompts")}
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "--- policy-qa 1.0.0 spec.model" in lines
    assert "-temperature: 0.0" in lines
    assert "+temperature: 0.2" in lines
    assert "+- gpt-4.1-nano" in lines
    assert "--- policy-qa 1.0.0 spec.rollout" in lines
    assert lines[-1] == "# unchanged: template, variables, retrieval, guardrails, cache"

    folder = tmp_path / "prompts"
    folder.mkdir()
    shutil.copy(ROOT / "prompts" / "policy-qa-1.0.0.yaml", folder)
    manifest = yaml.safe_load(
        (ROOT / "prompts" / "policy-qa-1.0.0.yaml").read_text(encoding="utf-8")
    )
    manifest["metadata"]["name"] = "policy-qa-1-2-0"
    manifest["spec"]["version"] = "1.2.0"
    manifest["spec"]["template"]["user"] = (
        manifest["spec"]["template"]["user"]
        .replace("neutral", "plain")
        .replace("Answer the user's question", "Answer the question")
    )
    (folder / "policy-qa-1.2.0.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    changed = CliRunner().invoke(
        app, ["diff", "policy-qa", "1.0.0", "1.2.0", "--prompts-dir", str(folder)]
    )
    assert changed.exit_code == 0, changed.output
    assert "--- policy-qa 1.0.0 spec.template" in changed.stdout
    assert "-  - Answer the user's question strictly using the context below." in changed.stdout
    assert "+  - Answer the question strictly using the context below." in changed.stdout
    assert "spec.model" not in changed.stdout

    missing = CliRunner().invoke(
        app, ["diff", "policy-qa", "1.0.0", "9.9.9", "--prompts-dir", str(folder)]
    )
    assert missing.exit_code == 2
    assert "no manifest of policy-qa 9.9.9 in" in missing.stderr
    assert "versions found: 1.0.0, 1.2.0" in missing.stderr


def test_help_documents_the_exit_codes() -> None:
    result = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "Exit codes: 0 the candidate passes; 1 a regression" in text
    assert "2 a setup or input error" in text


def test_an_unreachable_service_is_a_setup_error(small_evalset: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        app,
        ["eval", str(small_evalset), "--baseline", "1.0.0", "--candidate", "1.1.0", "--url", url],
    )
    assert result.exit_code == 2, result.output
    assert f"error cannot list prompts at {url}" in result.stderr


def test_repeats_expose_a_flaky_case_and_the_quorum_decides(tmp_path: Path) -> None:
    """The fake model fails the first of three runs (503, no retry): 2/3 runs pass."""
    evalset = tmp_path / "one.yaml"
    evalset.write_text(
        "prompt: policy-qa\ncases:\n  - id: digital-refund\n"
        "    question: Can I refund a digital item after two weeks?\n"
        "    expect: {outcome: answered, sources_any: [digital-goods.md]}\n",
        encoding="utf-8",
    )
    args = [
        "eval",
        str(evalset),
        "--baseline",
        "1.0.0",
        "--candidate",
        "1.0.0",
        "--repeat",
        "3",
        "--concurrency",
        "1",
    ]
    for quorum, code in (("0.6", 0), ("1.0", 1)):
        state = FakeModelState(faults=Faults(status=503, times=1))
        with serve_in_thread(create_fake_model_app(state)) as url:
            env = service_env(ROOT / "prompts") | {
                "MODEL_BASE_URL": f"{url}/v1",
                "MODEL_MAX_ATTEMPTS": "1",
            }
            result = CliRunner().invoke(app, [*args, "--pass-quorum", quorum], env=env)
        assert result.exit_code == code, result.output
        assert "1 flaky case(s) on 1.0.0" in result.stderr
        assert "| `digital-refund` | same-" in result.stdout
        # Runs go one at a time, in order: the first one got the 503.
        mark = "✓" if code == 0 else "✗"
        assert f"| {mark} HTTP 503 x1, answered x2 2/3 |" in result.stdout
