"""The extractive summarizer: pure choices as tables, then real summaries with MiniLM."""

from __future__ import annotations

import math
import re

import pytest

from api.v1alpha1 import Variable, VariableType
from prompting.rendering import Message
from service.llm.chat import ChatRequest
from service.llm.extractive import EXTRACTIVE_MODEL_ID, ExtractiveAnswerer
from service.llm.summarizer import (
    MAX_CANDIDATES,
    ExtractiveSummarizer,
    bound_candidates,
    build_inputs,
    cut_to_chars,
    decide_summary,
    split_text,
)
from service.retrieval.embeddings import OnnxMiniLMEmbedder

TICKET = """Subject: Order LK-48213 still not delivered

Hi,

I ordered a standing desk lamp on 2 March (order LK-48213) with standard delivery.
The tracking page has said "in transit" for nine days and the parcel has still not been delivered.
Your website says standard delivery takes 3 to 5 business days, so the parcel is clearly late.
I need the lamp for my home office, so please find the parcel or send a new one.

Thanks,
Daniel Okafor"""

DECLARED = [
    Variable(name="ticket", required=True, max_length=16000),
    Variable(name="audience", enum=["agent", "customer"], default="agent"),
    Variable(name="maxBullets", type=VariableType.INTEGER, default=5),
    Variable(name="note"),
]


# --- pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(
            {"ticket": "T.", "audience": "agent", "maxBullets": 3, "note": ""},
            ("T.",),
            id="free-text-only",
        ),
        pytest.param({"ticket": "T.", "note": "N."}, ("T.", "N."), id="declaration-order"),
        pytest.param({"ticket": "   ", "audience": "agent"}, ("Q?",), id="blank-falls-back"),
        pytest.param({}, ("Q?",), id="no-values"),
    ],
)
def test_build_inputs(values: dict[str, str | int], expected: tuple[str, ...]) -> None:
    assert build_inputs(DECLARED, values, "Q?") == expected


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        pytest.param(
            ["First sentence is long enough. Second one is long enough too!"],
            ["First sentence is long enough.", "Second one is long enough too!"],
            id="sentence-ends",
        ),
        pytest.param(
            ["- a bullet that is long enough\n> quoted reply that is long enough"],
            ["a bullet that is long enough", "quoted reply that is long enough"],
            id="markers-stripped",
        ),
        pytest.param(
            ["Hi,\nThe parcel was never delivered to me.\nThanks"],
            ["The parcel was never delivered to me."],
            id="short-pieces-dropped",
        ),
        pytest.param(["Help!\nNow."], ["Help!", "Now."], id="only-short-pieces-kept"),
        pytest.param(
            ["The same sentence twice here.", "The   same sentence twice here."],
            ["The same sentence twice here."],
            id="duplicates-once",
        ),
        pytest.param(["", "   \n  "], [], id="empty"),
    ],
)
def test_split_text(texts: list[str], expected: list[str]) -> None:
    assert split_text(texts) == expected


@pytest.mark.parametrize(
    ("count", "limit", "expected"),
    [
        pytest.param(3, 6, [0, 1, 2], id="under"),
        pytest.param(6, 6, [0, 1, 2, 3, 4, 5], id="at"),
        pytest.param(10, 6, [0, 1, 2, 3, 8, 9], id="head-and-tail"),
    ],
)
def test_bound_candidates(count: int, limit: int, expected: list[int]) -> None:
    assert bound_candidates(count, limit) == expected


def test_bound_candidates_default_limit() -> None:
    kept = bound_candidates(1000)
    assert len(kept) == MAX_CANDIDATES and kept[0] == 0 and kept[-1] == 999


def _unit(*xs: float) -> list[float]:
    norm = math.sqrt(sum(x * x for x in xs))
    return [x / norm for x in xs]


# Centrality (cosine to the centroid): 0.60, 0.32 (the off-topic one), 0.48, 0.46.
VECTORS = [_unit(1, 1, 0), _unit(0, 0, 1), _unit(1, 0, 0.2), _unit(0, 1, 0.1)]


@pytest.mark.parametrize(
    ("lengths", "max_sentences", "max_chars", "expected"),
    [
        pytest.param([10, 10, 10, 10], 2, 1000, [0, 2], id="central-in-original-order"),
        pytest.param([10, 10, 10, 10], 3, 1000, [0, 2, 3], id="off-topic-last"),
        pytest.param([10, 10, 10, 10], 1, 1000, [0], id="one"),
        pytest.param([10, 10, 50, 10], 2, 30, [0, 3], id="budget-skips-long"),
        pytest.param([500, 10, 10, 10], 3, 100, [0], id="best-always-kept"),
    ],
)
def test_decide_summary(
    lengths: list[int], max_sentences: int, max_chars: int, expected: list[int]
) -> None:
    assert decide_summary(VECTORS, lengths, max_sentences, max_chars) == expected


def test_decide_summary_skips_near_duplicates() -> None:
    twins_and_one = [_unit(1, 0), _unit(1, 0.001), _unit(0.6, 0.8)]
    chosen = decide_summary(twins_and_one, [10, 10, 10], 2, 1000)
    assert len(chosen) == 2 and 2 in chosen  # one twin, then the distinct sentence


def test_decide_summary_of_nothing() -> None:
    assert decide_summary([], [], 3, 100) == []


@pytest.mark.parametrize(
    ("sentence", "max_chars", "expected"),
    [
        pytest.param("short one", 100, "short one", id="fits"),
        pytest.param("one two three four", 9, "one two", id="whole-words"),
        pytest.param("supercalifragilistic word", 5, "supercalifragilistic", id="one-word-min"),
    ],
)
def test_cut_to_chars(sentence: str, max_chars: int, expected: str) -> None:
    assert cut_to_chars(sentence, max_chars) == expected


# --- with the bundled embedder -----------------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'-]+", text.casefold())


@pytest.mark.asyncio
async def test_summary_is_central_sentences_of_the_input_in_order(
    minilm: OnnxMiniLMEmbedder,
) -> None:
    summary = await ExtractiveSummarizer(minilm).summarize([TICKET], max_tokens=300)

    sentences = split_text([TICKET])
    chosen = [s for s in sentences if s in summary]
    assert 1 <= len(chosen) <= 3
    assert summary == " ".join(chosen)  # nothing but whole input sentences, in input order
    assert "delivered" in summary
    assert "Thanks" not in summary and "Daniel Okafor" not in summary
    assert set(_words(summary)) <= set(_words(TICKET))  # no invented words


@pytest.mark.asyncio
@pytest.mark.parametrize("max_tokens", [5, 20, 40, 300])
async def test_summary_stays_within_max_tokens(minilm: OnnxMiniLMEmbedder, max_tokens: int) -> None:
    summary = await ExtractiveSummarizer(minilm).summarize([TICKET], max_tokens=max_tokens)

    assert summary
    assert len(summary) <= max_tokens * 4
    assert set(_words(summary)) <= set(_words(TICKET))


@pytest.mark.asyncio
async def test_summary_of_nothing_is_empty(minilm: OnnxMiniLMEmbedder) -> None:
    assert await ExtractiveSummarizer(minilm).summarize(["", "  "], max_tokens=100) == ""


@pytest.mark.asyncio
async def test_answerer_summarises_when_there_are_no_passages(minilm: OnnxMiniLMEmbedder) -> None:
    request = ChatRequest(
        model="gpt-4o-mini",
        messages=[Message("system", "Summarize."), Message("user", f"TICKET:\n{TICKET}")],
        temperature=0.0,
        max_tokens=300,
        timeout_seconds=5,
        question="Summarize this ticket.",
        inputs=(TICKET,),
    )

    reply = await ExtractiveAnswerer(minilm).answer_from([], request)

    assert reply.model == EXTRACTIVE_MODEL_ID
    assert "delivered" in reply.text
    assert "Summarize this ticket" not in reply.text  # the question is not the input
    assert reply.output_tokens > 0 and reply.input_tokens > 0
