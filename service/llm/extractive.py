"""The embedded, no-model answerer: quotes the retrieved sentences that best answer the question.

Used when ``MODEL_BASE_URL`` is unset. It never writes a word of its own: every
sentence of its answer is copied from a retrieved passage and followed by that
passage's ``[n]`` marker, so it is grounded by construction. It is honest about
its limits: it does not follow tone or length instructions. For prompts without
retrieval it summarises the caller's own text instead (:mod:`service.llm.summarizer`). It never
quotes a sentence the injection screener (:mod:`prompting.screening`) flags, even when one
reaches it unscreened.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from prompting.screening import assess_sentence
from prompting.tokens import estimate_tokens
from service.errors import ModelError
from service.llm.chat import ChatRequest, ChatResponse
from service.llm.summarizer import ExtractiveSummarizer
from service.retrieval.embeddings import Embedder

__all__ = ["EXTRACTIVE_MODEL_ID", "ExtractiveAnswerer", "Sentence", "split_sentences"]

EXTRACTIVE_MODEL_ID = "embedded-extractive"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_HEADING = re.compile(r"^\s*#+\s")


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage and the citation number of that passage."""

    text: str
    citation: int


def split_sentences(sources: Sequence[str]) -> list[Sentence]:
    """Every sentence of the source texts, tagged with its source's [n] (pure).

    Sentences the injection screener flags are left out: they are never quoted.
    """
    sentences: list[Sentence] = []
    for number, source in enumerate(sources, start=1):
        for line in source.splitlines():
            if not line.strip() or _HEADING.match(line):
                continue
            for piece in _SENTENCE_END.split(line.strip()):
                text = piece.strip(" -*\t")
                if len(text) >= 12 and assess_sentence(text) is None:
                    sentences.append(Sentence(text=text, citation=number))
    return sentences


def choose_sentences(
    scored: Sequence[tuple[Sentence, float]], max_sentences: int, margin: float, max_chars: int
) -> list[Sentence]:
    """The best sentence, plus those scoring within `margin` of it, within the budget (pure)."""
    ranked = sorted(scored, key=lambda pair: pair[1], reverse=True)
    if not ranked:
        return []
    best = ranked[0][1]
    chosen: list[Sentence] = []
    used = 0
    for sentence, score in ranked:
        if len(chosen) == max_sentences or (chosen and score < best - margin):
            break
        if chosen and used + len(sentence.text) > max_chars:
            continue
        chosen.append(sentence)
        used += len(sentence.text)
    return chosen


class ExtractiveAnswerer:
    """Answers with the retrieved sentences closest in meaning to the question."""

    def __init__(
        self,
        embedder: Embedder,
        max_sentences: int = 2,
        margin: float = 0.12,
        cache_size: int = 4096,
    ) -> None:
        self._embedder = embedder
        self._max_sentences = max_sentences
        self._margin = margin
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._cache_size = cache_size
        self._summarizer = ExtractiveSummarizer(embedder)

    async def answer_from(self, sources: Sequence[str], request: ChatRequest) -> ChatResponse:
        """Compose the answer from `sources`, the retrieved passages' texts in citation order;
        without sources (a prompt without retrieval), summarise the request's own input."""
        if not sources:
            return await self._summarizer.complete(request, EXTRACTIVE_MODEL_ID)
        sentences = split_sentences(sources)
        if not sentences:
            raise ModelError("the retrieved passages hold no sentence the answerer can quote")
        question_vector = (await self._embedder.embed([request.question]))[0]
        vectors = await self._vectors([s.text for s in sentences])
        scored = [
            (sentence, sum(a * b for a, b in zip(question_vector, vector, strict=True)))
            for sentence, vector in zip(sentences, vectors, strict=True)
        ]
        chosen = choose_sentences(
            scored, self._max_sentences, self._margin, max_chars=request.max_tokens * 4
        )
        text = " ".join(f"{s.text} [{s.citation}]" for s in chosen)
        return ChatResponse(
            text=text,
            model=EXTRACTIVE_MODEL_ID,
            input_tokens=sum(estimate_tokens(m.content) for m in request.messages),
            output_tokens=estimate_tokens(text),
        )

    async def _vectors(self, texts: list[str]) -> list[list[float]]:
        """Sentence vectors, embedding only those not seen recently."""
        missing = [text for text in dict.fromkeys(texts) if text not in self._cache]
        if missing:
            for text, vector in zip(missing, await self._embedder.embed(missing), strict=True):
                self._cache[text] = vector
        for text in texts:
            self._cache.move_to_end(text)
        vectors = [self._cache[text] for text in texts]
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return vectors
