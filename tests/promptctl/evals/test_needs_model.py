"""`promptctl.evals.needs_model`: which prompts prompt CI evaluates against a model server."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptctl.evals.needs_model import assess_needs_model, fetch_documents, main

ROOT = Path(__file__).resolve().parents[3]


def _doc(prompt: str, **spec: object) -> dict[str, object]:
    return {"kind": "PromptVersion", "spec": {"prompt": prompt, **spec}}


@pytest.mark.parametrize(
    ("documents", "expected"),
    [
        ([_doc("a")], False),
        ([_doc("a"), _doc("a", output={"schema": {"type": "object"}})], True),
        ([_doc("a", tools=[{"name": "t"}])], True),
        ([_doc("a", tools=[]), _doc("b", output={"schema": {}})], False),  # b's contract
        ([_doc("b", tools=[{"name": "t"}]), None, "text", {"spec": []}], None),
    ],
)
def test_a_version_with_output_or_tools_needs_a_model(
    documents: list[object], expected: bool | None
) -> None:
    assert assess_needs_model(documents, "a") is expected


def test_the_shipped_prompts_that_need_a_model() -> None:
    documents = fetch_documents(ROOT / "prompts")
    names = {d["spec"]["prompt"] for d in documents if isinstance(d, dict)}
    needing = {name for name in names if assess_needs_model(documents, name)}
    assert needing == {"order-status"}
    assert {"policy-qa", "faq-bot", "ticket-summarizer"} <= names - needing


def test_the_command_exits_0_1_or_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = str(ROOT / "prompts")
    assert main(["order-status", "--prompts", prompts]) == 0
    assert main(["policy-qa", "--prompts", prompts]) == 1
    assert main(["no-such-prompt", "--prompts", prompts]) == 2
    assert "no manifest in" in capsys.readouterr().err
    (tmp_path / "broken.yaml").write_text("spec: [unclosed", encoding="utf-8")
    assert main(["order-status", "--prompts", str(tmp_path)]) == 2
    assert "cannot read the manifests" in capsys.readouterr().err
    assert main(["order-status", "--prompts", str(tmp_path / "missing")]) == 2
