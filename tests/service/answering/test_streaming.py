"""Streamed answers in process: the embedded answerer streams by sentence; recorded once."""

from __future__ import annotations

import pytest

from service.answering.pipeline import AnswerService
from service.answering.stream_events import Delta, Final
from service.answering.streaming import open_answer_stream
from service.llm.extractive import ExtractiveAnswerer
from service.llm.streams import split_sentences_kept
from tests.service.test_pipeline import (
    REFUND,
    SHIPPING,
    FakeRetriever,
    WordEmbedder,
    _ask,
    _service,
)

pytestmark = pytest.mark.asyncio


def _requests(service: AnswerService) -> float:
    return sum(
        float(sample.value)
        for family in service.metrics.requests.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("One [1]. Two. [2] Three", ["One [1]. ", "Two. [2] ", "Three"]),
        ("Refunds take five days. [1]", ["Refunds take five days. [1]"]),
        ("", []),
    ],
)
async def test_sentences_keep_their_markers_and_rebuild_the_text(
    text: str, pieces: list[str]
) -> None:
    assert split_sentences_kept(text) == pieces
    assert "".join(split_sentences_kept(text)) == text


async def test_the_embedded_answerer_streams_the_plain_answer_and_records_once() -> None:
    service = _service(ExtractiveAnswerer(WordEmbedder()), FakeRetriever([SHIPPING, REFUND]))
    plain = await service.answer(_ask(), "req-plain")
    before = _requests(service)
    stream = await open_answer_stream(service, _ask(), "req-stream")
    events = [event async for event in stream.events()]
    await stream.aclose()  # closing an ended stream records nothing more
    assert isinstance(events[-1], Final)
    final = events[-1].response
    assert final.answer == plain.answer and final.outcome == plain.outcome
    assert "".join(e.text for e in events if isinstance(e, Delta)) == plain.answer
    assert [c.id for c in final.citations] == [c.id for c in plain.citations]
    assert _requests(service) == before + 1


async def test_a_stream_closed_before_it_is_read_is_recorded_once_as_an_error() -> None:
    service = _service(ExtractiveAnswerer(WordEmbedder()), FakeRetriever([SHIPPING, REFUND]))
    before = _requests(service)
    stream = await open_answer_stream(service, _ask(), "req-gone")
    await stream.aclose()
    await stream.aclose()
    assert _requests(service) == before + 1
    labels = {"prompt": "qa", "version": "1.0.0", "outcome": "error"}
    assert service.metrics.registry.get_sample_value("promptrollouts_requests_total", labels) == 1
