"""``promptctl lint`` end to end: the real prompts pass, each fixture defect is named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from promptctl.main import app

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "lint"

#: Wide terminal so Rich never truncates a table cell the tests look for.
runner = CliRunner(env={"COLUMNS": "240", "NO_COLOR": "1"})


def _lint(path: Path, *flags: str) -> Result:
    return runner.invoke(app, ["lint", str(path), *flags])


def _findings(result: Result) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(REPO / "prompts", id="real-prompts-folder"),
        pytest.param(REPO / "prompts" / "policy-qa-1.1.0.yaml", id="real-prompt-file"),
        pytest.param(FIXTURES / "good", id="fixture-good-folder"),
    ],
)
def test_lint_clean_manifests_pass(path: Path) -> None:
    result = _lint(path, "--output", "json", "--strict")

    assert result.exit_code == 0, result.output
    findings = _findings(result)
    assert findings["problems"] == []
    expected = 1 if path.is_file() else len(list(path.glob("*.yaml")))
    assert findings["versions"] == expected


def test_lint_clean_text_output_counts_versions() -> None:
    result = _lint(FIXTURES / "good")

    assert result.exit_code == 0, result.output
    assert "3 PromptVersion(s), no problems" in result.stdout


@pytest.mark.parametrize(
    ("case", "rule", "message"),
    [
        pytest.param("bad-semver", "schema", "spec.version: ", id="schema-bad-semver"),
        pytest.param(
            "duplicate-version", "duplicate-version", "version 1.0.0", id="duplicate-version"
        ),
        pytest.param("undeclared-variable", "undeclared-variable", "'audience'", id="undeclared"),
        pytest.param("unused-variable", "unused-variable", "'audience'", id="unused"),
        pytest.param("missing-context", "missing-context", "{{ context }}", id="missing-context"),
        pytest.param(
            "forbidden-phrase",
            "forbidden-phrase",
            "template.system contains the forbidden phrase 'as an AI language model'",
            id="forbidden-phrase",
        ),
        pytest.param(
            "template-syntax", "template-syntax", "template.user line 5", id="template-syntax"
        ),
        pytest.param(
            "output-not-mentioned",
            "output-format-not-mentioned",
            "neither template.system nor template.user mentions JSON",
            id="output-format-not-mentioned",
        ),
        pytest.param(
            "output-bad-schema",
            "schema",
            "spec.output.schema: ",
            id="output-schema-invalid",
        ),
    ],
)
def test_lint_bad_case_fails_naming_only_its_rule(case: str, rule: str, message: str) -> None:
    folder = FIXTURES / case
    result = _lint(folder, "--output", "json")

    assert result.exit_code == 1, result.output
    problems = _findings(result)["problems"]
    assert problems, "a failing lint must say why"
    assert {p["rule"] for p in problems} == {rule}
    assert {p["severity"] for p in problems} == {"error"}
    assert all(message in p["message"] for p in problems), problems
    files = set(folder.glob("*.yaml"))
    named = {f for f in files if any(p["origin"].startswith((f"{f}[", f"{f} (")) for p in problems)}
    assert named == files


def test_lint_schema_error_names_the_field_in_text_output() -> None:
    result = _lint(FIXTURES / "bad-semver")

    assert result.exit_code == 1
    assert "schema" in result.stdout
    assert "spec.version" in result.stdout


@pytest.mark.parametrize(
    ("flags", "exit_code"),
    [
        pytest.param((), 0, id="warning-passes"),
        pytest.param(("--strict",), 1, id="strict-fails-on-warning"),
    ],
)
def test_lint_missing_changelog_is_a_warning(flags: tuple[str, ...], exit_code: int) -> None:
    result = _lint(FIXTURES / "missing-changelog", "--output", "json", *flags)

    assert result.exit_code == exit_code, result.output
    [problem] = _findings(result)["problems"]
    assert (problem["rule"], problem["severity"]) == ("missing-changelog", "warning")


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_lint_empty_folder_fails(tmp_path: Path, as_json: bool) -> None:
    (tmp_path / "README.md").write_text("not a manifest\n", encoding="utf-8")
    result = _lint(tmp_path, *(["--output", "json"] if as_json else []))

    assert result.exit_code == 1
    if as_json:
        assert _findings(result) == {"versions": 0, "problems": []}
    else:
        assert "no PromptVersion manifests found" in result.stdout


def test_lint_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = _lint(tmp_path / "nowhere")

    assert result.exit_code == 2


def test_lint_names_the_semver_rule_instead_of_a_regex() -> None:
    result = _lint(FIXTURES / "bad-semver", "--output", "json")

    [problem] = _findings(result)["problems"]
    assert problem["message"] == (
        "spec.version: version must be semver, e.g. 1.2.0 (MAJOR.MINOR.PATCH, no leading 'v')"
    )
    text = _lint(FIXTURES / "bad-semver")
    assert "version must be semver, e.g. 1.2.0" in text.stdout
    assert "\\d" not in text.stdout and "pattern" not in text.stdout
