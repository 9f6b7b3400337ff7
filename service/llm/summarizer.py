"""Extractive summaries of the caller's own text: the embedded answer for prompts without retrieval.

Used by :class:`service.llm.extractive.ExtractiveAnswerer` when a request has no
retrieved passages (its version has no ``retrieval``). The text summarised is the
caller's free text (:func:`build_inputs`): the declared string variables without an
``enum`` (a ticket, an email, a document), or the question when there are none.

The summary is the most *central* sentences of that text: each sentence is embedded
with the service's embedder and scored by cosine similarity to the mean of all
sentence vectors, so sentences about what the whole text is about score highest.
Near-duplicates of a chosen sentence are skipped, the chosen ones are put back in
their original order, and the total stays within the version's ``maxTokens``
(estimated as 4 characters a token). Nothing is added: every word of a summary is a
word of the input, so the summary follows no instructions (audience, bullets, tone).

    build_inputs(declared, values, question) -> texts to summarise      (pure)
    split_text(texts)                         -> candidate sentences     (pure)
    decide_summary(vectors, lengths, ...)     -> indexes of the summary  (pure)
    ExtractiveSummarizer.summarize(texts, max_tokens) -> str             (embeds)
    ExtractiveSummarizer.complete(request, model_id)  -> ChatResponse    (embeds)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from api.v1alpha1 import Scalar, Variable, VariableType
from prompting.tokens import estimate_tokens
from service.llm.chat import ChatRequest, ChatResponse
from service.retrieval.embeddings import Embedder

__all__ = [
    "MAX_CANDIDATES",
    "ExtractiveSummarizer",
    "bound_candidates",
    "build_inputs",
    "cut_to_chars",
    "decide_summary",
    "split_text",
]

#: Sentences embedded per summary at most (bounds the CPU a 16k-character text costs);
#: longer texts keep their first two thirds and last third of this many.
MAX_CANDIDATES = 60
#: Shorter pieces (greetings, "Thanks,", names) are not candidates while longer ones exist.
MIN_SENTENCE_CHARS = 20
#: A sentence this similar to one already chosen adds nothing.
DUPLICATE_SIMILARITY = 0.92

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[^\s])")
_MARKUP = re.compile(r"^\s*(?:[-*•>]+|#+|\d+[.)])\s+")


def build_inputs(
    declared: Sequence[Variable], values: Mapping[str, Scalar], question: str
) -> tuple[str, ...]:
    """The caller's free text: non-empty string variables without `enum`, else the question."""
    texts = tuple(
        value
        for variable in declared
        if variable.type is VariableType.STRING and variable.enum is None
        for value in [values.get(variable.name)]
        if isinstance(value, str) and value.strip()
    )
    return texts or (question,)


def split_text(texts: Sequence[str]) -> list[str]:
    """The sentences of `texts` in order: split on lines and sentence ends, list markers and
    quoted-reply markers removed, whitespace collapsed (pure).

    Pieces shorter than MIN_SENTENCE_CHARS are dropped unless nothing longer exists.
    """
    pieces: list[str] = []
    for text in texts:
        for raw in text.splitlines():
            line = _MARKUP.sub("", raw).strip()
            for piece in _SENTENCE_END.split(line):
                sentence = " ".join(piece.split())
                if sentence and sentence not in pieces:
                    pieces.append(sentence)
    long_enough = [p for p in pieces if len(p) >= MIN_SENTENCE_CHARS]
    return long_enough or pieces


def bound_candidates(count: int, limit: int = MAX_CANDIDATES) -> list[int]:
    """Indexes of the sentences to consider: all, or the first 2/3 and last 1/3 of `limit`."""
    if count <= limit:
        return list(range(count))
    head = (limit * 2) // 3
    return [*range(head), *range(count - (limit - head), count)]


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def decide_summary(
    vectors: Sequence[Sequence[float]],
    lengths: Sequence[int],
    max_sentences: int,
    max_chars: int,
) -> list[int]:
    """Indexes of the summary sentences, ascending (pure).

    Scores are cosine similarities to the centroid of `vectors` (unit vectors). The best
    sentence is always chosen; others, best first, while they fit `max_chars` (a space
    between sentences counted), are not near-duplicates of a chosen one, and fewer than
    `max_sentences` are chosen. Ties keep the earlier sentence first.
    """
    if not vectors:
        return []
    dimension = len(vectors[0])
    centroid = [sum(v[i] for v in vectors) / len(vectors) for i in range(dimension)]
    ranked = sorted(range(len(vectors)), key=lambda i: (-_dot(vectors[i], centroid), i))
    chosen: list[int] = []
    used = 0
    for index in ranked:
        if len(chosen) == max_sentences:
            break
        if chosen and used + 1 + lengths[index] > max_chars:
            continue
        if any(_dot(vectors[index], vectors[c]) >= DUPLICATE_SIMILARITY for c in chosen):
            continue
        chosen.append(index)
        used += lengths[index] + (1 if len(chosen) > 1 else 0)
    return sorted(chosen)


def cut_to_chars(sentence: str, max_chars: int) -> str:
    """The sentence, or its leading whole words within `max_chars` (at least one word)."""
    if len(sentence) <= max_chars:
        return sentence
    words = sentence.split()
    kept = [words[0]]
    for word in words[1:]:
        if len(" ".join([*kept, word])) > max_chars:
            break
        kept.append(word)
    return " ".join(kept)


class ExtractiveSummarizer:
    """Summarises the caller's text with its most central sentences."""

    def __init__(self, embedder: Embedder, max_sentences: int = 3) -> None:
        self._embedder = embedder
        self._max_sentences = max_sentences

    async def summarize(self, texts: Sequence[str], max_tokens: int) -> str:
        """The summary of `texts` within `max_tokens` (times 4 characters); "" for no text."""
        sentences = split_text(texts)
        sentences = [sentences[i] for i in bound_candidates(len(sentences))]
        if not sentences:
            return ""
        max_chars = max(1, max_tokens) * 4
        vectors = await self._embedder.embed(sentences)
        chosen = decide_summary(
            vectors, [len(s) for s in sentences], self._max_sentences, max_chars
        )
        if len(chosen) == 1:
            return cut_to_chars(sentences[chosen[0]], max_chars)
        return " ".join(sentences[i] for i in chosen)

    async def complete(self, request: ChatRequest, model_id: str) -> ChatResponse:
        """The summary of the request's inputs (or its question) as a chat reply."""
        text = await self.summarize(request.inputs or (request.question,), request.max_tokens)
        return ChatResponse(
            text=text,
            model=model_id,
            input_tokens=sum(estimate_tokens(m.content) for m in request.messages),
            output_tokens=estimate_tokens(text),
        )
