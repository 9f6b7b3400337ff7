"""``promptctl render`` end to end through Typer: values, defaults, errors, no injection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from promptctl.main import app

REPO = Path(__file__).resolve().parents[2]
POLICY_QA = REPO / "prompts" / "policy-qa-1.1.0.yaml"
POLICY_QA_OLD = REPO / "prompts" / "policy-qa-1.0.0.yaml"

#: Wide terminal so Rich never wraps a message the tests look for.
runner = CliRunner(env={"COLUMNS": "240", "NO_COLOR": "1"})


def _render(*args: str | Path) -> Result:
    return runner.invoke(app, ["render", *(str(arg) for arg in args)])


def _free_text_manifest() -> dict[str, Any]:
    """A PromptVersion whose `audience` variable takes any string (no enum, no pattern)."""
    return {
        "apiVersion": "promptrollouts.io/v1alpha1",
        "kind": "PromptVersion",
        "metadata": {"name": "free-text-1-0-0"},
        "spec": {
            "prompt": "free-text",
            "version": "1.0.0",
            "owner": "tests@example.com",
            "template": {
                "system": "You write for {{ audience }}.",
                "user": "QUESTION:\n{{ question }}",
            },
            "variables": [{"name": "audience", "type": "string", "default": "everyone"}],
            "model": {"name": "gpt-4o-mini"},
        },
    }


@pytest.fixture
def free_text_file(tmp_path: Path) -> Path:
    path = tmp_path / "free-text.yaml"
    path.write_text(yaml.safe_dump(_free_text_manifest()), encoding="utf-8")
    return path


@pytest.fixture
def multi_document_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy-qa-all.yaml"
    documents = [p.read_text(encoding="utf-8") for p in (POLICY_QA_OLD, POLICY_QA)]
    path.write_text("\n---\n".join(documents), encoding="utf-8")
    return path


def _messages(result: Result) -> dict[str, str]:
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    return {message["role"]: message["content"] for message in parsed}


def test_render_prints_question_context_and_variables() -> None:
    result = _render(
        POLICY_QA,
        "--var",
        "tone=formal",
        "--var",
        "max_length=50",
        "--question",
        "Can I expense a taxi?",
        "--context",
        "[1] (travel.md) Taxis are reimbursed.",
    )

    assert result.exit_code == 0, result.output
    for expected in (
        "Can I expense a taxi?",
        "[1] (travel.md) Taxis are reimbursed.",
        "Write in a formal tone.",
        "Use at most 50 words.",
    ):
        assert expected in result.stdout
    assert "{{" not in result.stdout


def test_render_json_has_system_and_user_messages() -> None:
    result = _render(
        POLICY_QA, "--json", "--var", "tone=friendly", "--question", "Q?", "--context", "CTX"
    )

    messages = _messages(result)
    assert list(messages) == ["system", "user"]
    assert "policy expert" in messages["system"]
    assert "friendly tone" in messages["user"]
    assert messages["user"].endswith("QUESTION:\nQ?")
    assert "CONTEXT:\nCTX" in messages["user"]


def test_render_fills_missing_variables_with_their_defaults() -> None:
    declared = {
        v["name"]: v["default"] for v in yaml.safe_load(POLICY_QA.read_text())["spec"]["variables"]
    }

    messages = _messages(_render(POLICY_QA, "--json", "--question", "Q?"))

    assert f"Write in a {declared['tone']} tone." in messages["user"]
    assert f"Use at most {declared['max_length']} words." in messages["user"]


@pytest.mark.parametrize(
    ("assignment", "variable", "rule"),
    [
        pytest.param("tone=rude", "tone", "enum", id="enum-value-not-allowed"),
        pytest.param("max_length=abc", "max_length", "type", id="integer-not-a-number"),
        pytest.param("max_length=12.5", "max_length", "type", id="integer-given-a-fraction"),
        pytest.param("max_length=true", "max_length", "type", id="integer-given-a-boolean"),
        pytest.param("max_length=10", "max_length", "minimum", id="integer-below-minimum"),
        pytest.param("max_length=401", "max_length", "maximum", id="integer-above-maximum"),
        pytest.param("colour=red", "colour", "unknown", id="unknown-variable"),
        pytest.param("[/bold]=1", "[/bold]", "unknown", id="unknown-name-looks-like-markup"),
    ],
)
def test_render_rejects_a_bad_variable_naming_it_and_the_rule(
    assignment: str, variable: str, rule: str
) -> None:
    result = _render(POLICY_QA, "--var", assignment, "--question", "Q?")

    assert result.exit_code == 2, result.output
    assert f"variable {variable} ({rule})" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        pytest.param("max_length=50", "Use at most 50 words.", id="integer"),
        pytest.param("max_length=50.0", "Use at most 50 words.", id="integral-float-is-integer"),
        pytest.param("max_length= 77", "Use at most 77 words.", id="surrounding-space"),
    ],
)
def test_render_reads_integers(assignment: str, expected: str) -> None:
    messages = _messages(_render(POLICY_QA, "--json", "--var", assignment, "--question", "Q?"))

    assert expected in messages["user"]


def test_render_requires_name_equals_value() -> None:
    result = _render(POLICY_QA, "--var", "tone", "--question", "Q?")

    assert result.exit_code == 2
    assert "'tone' is not NAME=VALUE" in result.stderr


def test_render_multi_document_file_needs_version(multi_document_file: Path) -> None:
    result = _render(multi_document_file, "--question", "Q?")

    assert result.exit_code == 2
    assert "--version" in result.stderr
    assert "1.0.0, 1.1.0: choose one" in result.stderr


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_render_multi_document_file_with_version(multi_document_file: Path, version: str) -> None:
    messages = _messages(
        _render(multi_document_file, "--version", version, "--json", "--question", "Q?")
    )

    assert messages["user"].endswith("QUESTION:\nQ?")


def test_render_unknown_version_is_a_usage_error(multi_document_file: Path) -> None:
    result = _render(multi_document_file, "--version", "9.9.9", "--question", "Q?")

    assert result.exit_code == 2
    assert "has no version 9.9.9" in result.stderr


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("{{ 7*7 }}", id="jinja-expression"),
        pytest.param("{% for i in range(3) %}x{% endfor %}", id="jinja-statement"),
        pytest.param("{{ ''.__class__.__mro__ }}", id="sandbox-escape"),
        pytest.param("[bold red]loud[/bold red]", id="rich-markup"),
    ],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_render_prints_variable_values_literally(
    free_text_file: Path, value: str, as_json: bool
) -> None:
    flags = ["--json"] if as_json else []
    result = _render(free_text_file, *flags, "--var", f"audience={value}", "--question", value)

    assert result.exit_code == 0, result.output
    if as_json:
        messages = _messages(result)
        assert messages == {"system": f"You write for {value}.", "user": f"QUESTION:\n{value}"}
    else:
        assert f"You write for {value}." in result.stdout
        assert result.stdout.count(value) == 2
    assert "49" not in result.stdout
