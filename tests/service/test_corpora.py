"""Start-up corpora: CORPORA parsing, the CORPUS_DIR/CORPUS_COLLECTION shorthand, indexing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from qdrant_client import AsyncQdrantClient

from service.errors import CorpusError
from service.resources import index_corpora
from service.retrieval.embeddings import OnnxMiniLMEmbedder
from service.settings import DEFAULT_CORPORA, Settings, parse_corpora

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            "policies=data/policies,faq=data/faq",
            {"policies": Path("data/policies"), "faq": Path("data/faq")},
            id="pairs",
        ),
        pytest.param(" a = /x , , b=y ", {"a": Path("/x"), "b": Path("y")}, id="spaces-and-blanks"),
        pytest.param('{"kb": "/srv/kb"}', {"kb": Path("/srv/kb")}, id="json"),
        pytest.param({"kb": Path("/srv/kb")}, {"kb": Path("/srv/kb")}, id="mapping"),
        pytest.param("", {}, id="empty-disables"),
        pytest.param("a=/x=y", {"a": Path("/x=y")}, id="equals-in-folder"),
    ],
)
def test_parse_corpora(value: object, expected: dict[str, Path]) -> None:
    assert parse_corpora(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("policies", "is not collection=folder", id="no-equals"),
        pytest.param("a=x,a=y", "names collection 'a' twice", id="twice"),
        pytest.param("bad name=x", "must be 1-255 letters", id="bad-name"),
        pytest.param("a=", "needs a folder", id="no-folder"),
        pytest.param('{"a": 1}', "needs a folder", id="json-not-a-folder"),
        pytest.param("{not json", "not a valid JSON object", id="broken-json"),
        pytest.param("[1]", "is not collection=folder", id="list"),
    ],
)
def test_parse_corpora_names_the_problem(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_corpora(value)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, DEFAULT_CORPORA, id="defaults"),
        pytest.param({"CORPORA": "kb=/srv/kb"}, {"kb": Path("/srv/kb")}, id="corpora"),
        pytest.param({"CORPORA": ""}, {}, id="corpora-empty"),
        pytest.param({"CORPUS_DIR": "/corpus"}, {"policies": Path("/corpus")}, id="corpus-dir"),
        pytest.param(
            {"CORPUS_COLLECTION": "handbook"},
            {"handbook": Path("data/policies")},
            id="collection-alone",
        ),
        pytest.param(
            {"CORPUS_DIR": "/hb", "CORPUS_COLLECTION": "handbook"},
            {"handbook": Path("/hb")},
            id="both-legacy",
        ),
        pytest.param({"CORPUS_DIR": ""}, {}, id="corpus-dir-empty-disables"),
        pytest.param(
            {"CORPORA": "policies=/app/p,faq=/app/f", "CORPUS_DIR": "/corpus"},
            {"policies": Path("/corpus")},
            id="corpus-dir-replaces-corpora",
        ),
    ],
)
def test_start_up_corpora(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: dict[str, Path]
) -> None:
    for name in ("CORPORA", "CORPUS_DIR", "CORPUS_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().start_up_corpora() == expected


def test_a_bad_corpora_variable_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORPORA", "faq=data/faq,faq=other")
    with pytest.raises(ValidationError, match="CORPORA names collection 'faq' twice"):
        Settings()


def test_a_bad_corpus_collection_stops_start_up() -> None:
    with pytest.raises(ValidationError, match="corpus_collection"):
        Settings(corpus_collection="no spaces")


@pytest.mark.asyncio
async def test_index_corpora_fills_each_collection_from_its_folder(
    minilm: OnnxMiniLMEmbedder, memory_qdrant: AsyncQdrantClient
) -> None:
    corpora = {"policies": ROOT / "data" / "policies", "faq": ROOT / "data" / "faq"}
    await index_corpora(memory_qdrant, minilm, corpora)

    sources: dict[str, set[str]] = {}
    for collection in corpora:
        records, _ = await memory_qdrant.scroll(collection, limit=1000, with_payload=True)
        sources[collection] = {str((r.payload or {})["source"]) for r in records}
    assert sources["policies"] == {p.name for p in corpora["policies"].glob("*.md")}
    assert sources["faq"] == {p.name for p in corpora["faq"].glob("*.md")}
    assert len(sources["faq"]) >= 20

    await index_corpora(memory_qdrant, minilm, {"faq": corpora["faq"]})  # idempotent
    records, _ = await memory_qdrant.scroll("faq", limit=1000)
    assert len(records) == len(sources["faq"])


@pytest.mark.asyncio
async def test_index_corpora_fails_on_a_missing_folder(
    minilm: OnnxMiniLMEmbedder, memory_qdrant: AsyncQdrantClient, tmp_path: Path
) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        await index_corpora(memory_qdrant, minilm, {"faq": tmp_path / "missing"})
