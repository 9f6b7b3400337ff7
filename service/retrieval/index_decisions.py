"""What indexing a document means (pure): its screened passages, the payload stored with
each vector, and the writes that bring the stored payloads in line
(:mod:`service.retrieval.indexing` observes and applies them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from prompting.screening import SCREENING_VERSION, Flag, screen_text
from service.retrieval.chunking import Chunk, build_chunks

__all__ = [
    "ScreenedChunks",
    "SourceChanges",
    "build_payload",
    "build_screened_chunks",
    "decide_changes",
]


@dataclass(frozen=True)
class ScreenedChunks:
    """A document's passages as stored: screened text, and how many sentences each lost."""

    chunks: list[Chunk]
    screened: dict[str, int]
    flags: tuple[Flag, ...]


def build_screened_chunks(source: str, text: str, max_chars: int = 800) -> ScreenedChunks:
    """The passages of one document with instruction-like sentences taken out (pure).

    Point ids stay those of the unscreened passages, so ids do not move when the
    rules change; a passage left with no text is not stored at all.
    """
    chunks: list[Chunk] = []
    screened: dict[str, int] = {}
    flags: list[Flag] = []
    for chunk in build_chunks(source, text, max_chars):
        result = screen_text(chunk.text)
        flags.extend(result.flags)
        if not result.text.strip():
            continue
        chunks.append(replace(chunk, text=result.text) if result.flags else chunk)
        if result.flags:
            screened[chunk.point_id] = len(result.flags)
    return ScreenedChunks(chunks, screened, tuple(flags))


@dataclass(frozen=True)
class SourceChanges:
    """The writes one document needs."""

    to_add: list[Chunk]
    to_update: list[Chunk]
    unchanged: int
    to_remove: list[str]


def build_payload(chunk: Chunk, model_id: str, screened: int = 0) -> dict[str, Any]:
    """The payload stored with a chunk's vector (pure).

    ``screened`` counts the sentences screening took out of the passage; retrieval
    adds it to ``promptrollouts_injection_screened_total`` each time the passage is used.
    """
    return {
        "passage_id": chunk.passage_id,
        "source": chunk.source,
        "title": chunk.title,
        "text": chunk.text,
        "content_hash": chunk.content_hash,
        "embedding_model": model_id,
        "screening": SCREENING_VERSION,
        "screened": screened,
    }


def decide_changes(
    chunks: Sequence[Chunk],
    existing: Mapping[str, Mapping[str, Any]],
    model_id: str,
    screened: Mapping[str, int] | None = None,
) -> SourceChanges:
    """Compare a document's chunks with its stored payloads by point id (pure).

    ``screened`` maps point ids to the sentences screening took out of them.
    """
    counts = screened or {}
    to_add: list[Chunk] = []
    to_update: list[Chunk] = []
    unchanged = 0
    for chunk in chunks:
        stored = existing.get(chunk.point_id)
        if stored is None:
            to_add.append(chunk)
        elif stored != build_payload(chunk, model_id, counts.get(chunk.point_id, 0)):
            to_update.append(chunk)
        else:
            unchanged += 1
    wanted = {chunk.point_id for chunk in chunks}
    to_remove = sorted(point_id for point_id in existing if point_id not in wanted)
    return SourceChanges(to_add, to_update, unchanged, to_remove)
