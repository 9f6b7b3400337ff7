"""Cut markdown and text documents into passages for retrieval.

:func:`build_chunks` is pure: the first heading becomes the document's title,
later headings start new sections, blank lines separate paragraphs, short
paragraphs merge with their neighbours and long ones split on sentence
boundaries. A chunk's ``point_id`` depends only on its source and text, so
unchanged passages keep their ids across re-indexing. :func:`read_documents`
is the only I/O here.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from service.errors import CorpusError

__all__ = [
    "CHUNK_NAMESPACE",
    "DOCUMENT_SUFFIXES",
    "Chunk",
    "CorpusError",
    "build_chunks",
    "build_point_id",
    "read_documents",
]

#: Namespace of the uuid5 point ids (changing it re-indexes every corpus).
CHUNK_NAMESPACE = uuid.UUID("6f1c9a52-3a8e-5d43-9b0e-0c2f5b7d9e11")
DOCUMENT_SUFFIXES = frozenset({".md", ".txt"})

_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Chunk:
    """One passage of a document, ready to embed."""

    point_id: str
    passage_id: str
    source: str
    title: str
    text: str
    content_hash: str


def build_point_id(source: str, content_hash: str) -> str:
    """The stable uuid5 of a passage: same source and text, same id (pure)."""
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{source}\n{content_hash}"))


def build_chunks(source: str, text: str, max_chars: int = 800) -> list[Chunk]:
    """The passages of one document, in order, each at most ``max_chars`` long (pure).

    ``source`` is the path relative to the corpus folder (``refunds.md``); passage
    ids are its stem and a 1-based ordinal (``refunds#1``). Repeated passages of
    one document are kept once.
    """
    if max_chars < 40:
        raise ValueError("max_chars must be at least 40")
    title, sections = _split_sections(text)
    stem = PurePosixPath(source).stem
    passages: list[str] = []
    for paragraphs in sections:
        pieces = [piece for p in paragraphs for piece in _split_long(p, max_chars)]
        passages.extend(_merge_short(pieces, max_chars))
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for passage in passages:
        content_hash = hashlib.sha256(passage.encode()).hexdigest()
        if content_hash in seen:
            continue
        seen.add(content_hash)
        chunks.append(
            Chunk(
                point_id=build_point_id(source, content_hash),
                passage_id=f"{stem}#{len(chunks) + 1}",
                source=source,
                title=title or stem,
                text=passage,
                content_hash=content_hash,
            )
        )
    return chunks


def _split_sections(text: str) -> tuple[str | None, list[list[str]]]:
    """The title (first heading) and the paragraphs of each section."""
    title: str | None = None
    sections: list[list[str]] = [[]]
    lines: list[str] = []

    def end_paragraph() -> None:
        if lines:
            sections[-1].append("\n".join(lines))
            lines.clear()

    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        heading = _HEADING.match(line)
        if heading:
            end_paragraph()
            if title is None:
                title = heading.group(2)
                continue
            sections.append([])
            lines.append(line.strip())
            end_paragraph()
        elif line.strip():
            lines.append(line)
        else:
            end_paragraph()
    end_paragraph()
    return title, [section for section in sections if section]


def _split_long(paragraph: str, max_chars: int) -> list[str]:
    """A paragraph cut on sentence (or line) boundaries into pieces of at most max_chars."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    sentences = [s for s in _SENTENCE_BREAK.split(paragraph) if s.strip()]
    units = [unit for s in sentences for unit in _split_words(s.strip(), max_chars)]
    return _pack(units, max_chars, separator=" ")


def _split_words(sentence: str, max_chars: int) -> list[str]:
    """A sentence longer than max_chars cut between words (or, for one huge word, anywhere)."""
    if len(sentence) <= max_chars:
        return [sentence]
    words = [w[i : i + max_chars] for w in sentence.split() for i in range(0, len(w), max_chars)]
    return _pack(words, max_chars, separator=" ")


def _pack(units: list[str], max_chars: int, separator: str) -> list[str]:
    """Consecutive units joined greedily into pieces of at most max_chars."""
    pieces: list[str] = []
    for unit in units:
        if pieces and len(pieces[-1]) + len(separator) + len(unit) <= max_chars:
            pieces[-1] += separator + unit
        else:
            pieces.append(unit)
    return pieces


def _merge_short(pieces: list[str], max_chars: int) -> list[str]:
    """Paragraphs under a quarter of max_chars joined to a neighbour when the result fits."""
    tiny = max_chars // 4
    merged: list[str] = []
    for piece in pieces:
        if (
            merged
            and (len(merged[-1]) < tiny or len(piece) < tiny)
            and len(merged[-1]) + 2 + len(piece) <= max_chars
        ):
            merged[-1] += "\n\n" + piece
        else:
            merged.append(piece)
    return merged


def read_documents(directory: Path) -> list[tuple[str, str]]:
    """``(relative posix path, text)`` of every .md and .txt file under ``directory``, sorted.

    Hidden files and folders are skipped. Raises CorpusError for a missing folder
    or a file that is not UTF-8.
    """
    if not directory.is_dir():
        raise CorpusError(f"corpus folder {directory} does not exist or is not a folder")
    paths = (
        path
        for path in directory.rglob("*")
        if path.suffix.lower() in DOCUMENT_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    )
    documents: list[tuple[str, str]] = []
    for path in paths:
        source = path.relative_to(directory).as_posix()
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CorpusError(
                f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start}); re-save it as UTF-8 or remove it from the corpus"
            ) from exc
        except OSError as exc:
            raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from exc
        documents.append((source, text))
    return sorted(documents, key=lambda document: document[0])
