"""build_chunks (pure, tables) and read_documents (files in tmp_path)."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from service.retrieval.chunking import CorpusError, build_chunks, build_point_id, read_documents

LONG_SENTENCES = " ".join(f"Sentence {i} says something about refunds." for i in range(30))
HUGE_WORD = (string.ascii_lowercase * 20)[:500]
PARA_A = "Physical goods can be returned within 30 days of delivery for a full refund. " * 3
PARA_B = "Refunds reach the original payment method within five business days of arrival. " * 3


@pytest.mark.parametrize(
    ("source", "text", "max_chars", "title", "texts"),
    [
        ("refunds.md", f"# Refunds\n\n{PARA_A.strip()}", 800, "Refunds", [PARA_A.strip()]),
        ("faq/returns.txt", "No heading here.", 800, "returns", ["No heading here."]),
        (
            "refunds.md",
            f"# Refunds\n\n{PARA_A.strip()}\n\n{PARA_B.strip()}\n",
            800,
            "Refunds",
            [PARA_A.strip(), PARA_B.strip()],
        ),
        (
            "r.md",
            "# T\n\nShort one.\n\nShort two.\n\nShort three.",
            800,
            "T",
            ["Short one.\n\nShort two.\n\nShort three."],
        ),
        (
            "r.md",
            "# T\n\nIntro.\n\n## Exceptions\n\nOpened software is final.",
            800,
            "T",
            ["Intro.", "## Exceptions\n\nOpened software is final."],
        ),
        ("r.md", "# T\r\n\r\nLine one\r\nline two\r\n", 800, "T", ["Line one\nline two"]),
        ("r.md", "# Only a title\n\n\n", 800, "Only a title", []),
        ("r.md", "", 800, "r", []),
        (
            "r.md",
            "Same words.\n\n" * 3 + "x" * 300,
            800,
            "r",
            ["Same words.\n\nSame words.\n\nSame words.\n\n" + "x" * 300],
        ),
        ("r.md", f"{PARA_A}\n\n{PARA_B}\n\n{PARA_A}", 800, "r", [PARA_A.strip(), PARA_B.strip()]),
        ("r.md", HUGE_WORD, 200, "r", [HUGE_WORD[:200], HUGE_WORD[200:400], HUGE_WORD[400:]]),
    ],
    ids=[
        "heading-is-title",
        "stem-is-title",
        "blank-lines-split",
        "tiny-paragraphs-merge",
        "subheading-starts-passage",
        "crlf",
        "title-only",
        "empty",
        "merged-tiny-paragraphs-then-long",
        "duplicates-dropped",
        "huge-word-cut",
    ],
)
def test_build_chunks(source: str, text: str, max_chars: int, title: str, texts: list[str]) -> None:
    chunks = build_chunks(source, text, max_chars)
    assert [c.text for c in chunks] == texts
    assert {c.title for c in chunks} <= {title}
    assert all(c.source == source for c in chunks)


def test_long_paragraph_splits_on_sentences() -> None:
    chunks = build_chunks("r.md", LONG_SENTENCES, max_chars=200)
    assert len(chunks) > 1
    assert all(len(c.text) <= 200 for c in chunks)
    assert all(c.text.endswith("refunds.") for c in chunks)
    assert " ".join(c.text for c in chunks) == LONG_SENTENCES


def test_passage_ids_number_from_the_stem() -> None:
    chunks = build_chunks("faq/refunds.md", f"# R\n\n{PARA_A}\n\n{PARA_B}")
    assert [c.passage_id for c in chunks] == ["refunds#1", "refunds#2"]


def test_point_ids_are_stable_and_local() -> None:
    first = build_chunks("refunds.md", f"{PARA_A}\n\n{PARA_B}")
    edited = build_chunks("refunds.md", f"{PARA_A}\n\n{PARA_B} Edited.")
    moved = build_chunks("other.md", f"{PARA_A}\n\n{PARA_B}")
    assert [c.point_id for c in first] == [
        c.point_id for c in build_chunks("refunds.md", f"{PARA_A}\n\n{PARA_B}")
    ]
    assert first[0].point_id == edited[0].point_id
    assert first[1].point_id != edited[1].point_id
    assert {c.point_id for c in first}.isdisjoint(c.point_id for c in moved)
    assert first[0].point_id == build_point_id("refunds.md", first[0].content_hash)


@pytest.mark.parametrize("max_chars", [40, 120, 300, 800], ids=lambda n: f"max{n}")
def test_shipped_corpus_respects_max_chars(policies_dir: Path, max_chars: int) -> None:
    for source, text in read_documents(policies_dir):
        chunks = build_chunks(source, text, max_chars)
        assert chunks, source
        assert all(len(c.text) <= max_chars for c in chunks), source


def test_max_chars_too_small() -> None:
    with pytest.raises(ValueError, match="at least 40"):
        build_chunks("r.md", "text", max_chars=10)


def test_read_documents(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("# B\n\nbee", encoding="utf-8")
    (tmp_path / "a.txt").write_bytes("\ufeffcafé".encode())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.MD").write_text("see", encoding="utf-8")
    (tmp_path / "notes.rst").write_text("ignored", encoding="utf-8")
    (tmp_path / ".hidden.md").write_text("ignored", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.md").write_text("ignored", encoding="utf-8")
    assert read_documents(tmp_path) == [
        ("a.txt", "café"),
        ("b.md", "# B\n\nbee"),
        ("sub/c.MD", "see"),
    ]


def test_read_documents_rejects_non_utf8(tmp_path: Path) -> None:
    (tmp_path / "ok.md").write_text("fine", encoding="utf-8")
    (tmp_path / "latin1.md").write_bytes("prix: 10 €".encode("cp1252"))
    with pytest.raises(CorpusError, match=r"latin1\.md is not UTF-8 text \(byte 0x80"):
        read_documents(tmp_path)


def test_read_documents_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        read_documents(tmp_path / "nope")


def test_shipped_corpus_has_titles(policies_dir: Path) -> None:
    documents = read_documents(policies_dir)
    assert 8 <= len(documents) <= 12
    for source, text in documents:
        assert text.startswith("# "), source
