"""Facts the docs state about the code: counted or listed from the code, never hard-coded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.v1alpha1 import Phase
from service.answering.schemas import AnswerResponse
from service.retrieval.chunking import build_chunks, read_documents

ROOT = Path(__file__).resolve().parents[2]
NUMBERS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15}


def test_readme_counts_the_documents_and_passages_indexing_produces() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    match = re.search(
        r"(\w+) short policy documents of a fictional shop in `data/policies/` \((\d+) passages",
        readme,
    )
    assert match, "README no longer states how many documents and passages data/policies holds"
    documents = read_documents(ROOT / "data" / "policies")
    passages = sum(len(build_chunks(source, text)) for source, text in documents)
    assert NUMBERS[match.group(1)] == len(documents)
    assert int(match.group(2)) == passages


@pytest.mark.parametrize("field", sorted(AnswerResponse.model_fields))
def test_every_answer_field_is_documented(field: str) -> None:
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert f"| `{field}` |" in api, f"docs/api.md has no row for the answer field {field}"


def test_every_phase_is_listed_for_get_prompts() -> None:
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    (row,) = [line for line in api.splitlines() if line.startswith("| `phase` |")]
    assert all(f"`{phase.value}`" in row for phase in Phase), row
