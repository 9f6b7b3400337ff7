"""The stream guard: no chunking of a reply ever releases a forbidden phrase or a refusal."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from prompting.phrases import find_forbidden_phrase, normalise
from service.answering.stream_guard import StreamGuard, decide_release

PHRASES = ["internal pricing", "wire the money"]
_WORDS = st.sampled_from(
    ["Refunds", "take", "five", "days", "[1].", "the", "money", "wire", "pricing", "internal", "a"]
)


def _chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    edges = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges)]


def _released(guard: StreamGuard, chunks: list[str]) -> str:
    return "".join(guard.feed(chunk) for chunk in chunks)


@settings(max_examples=150, deadline=None)
@given(
    before=st.lists(_WORDS, max_size=12),
    after=st.lists(_WORDS, max_size=12),
    phrase=st.sampled_from(PHRASES),
    disguise=st.sampled_from(["plain", "upper", "spaces", "zero-width"]),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=30),
)
def test_a_forbidden_phrase_is_never_released_whatever_the_chunking(
    before: list[str], after: list[str], phrase: str, disguise: str, cuts: list[int]
) -> None:
    shown = {
        "plain": phrase,
        "upper": phrase.upper(),
        "spaces": phrase.replace(" ", "   "),
        "zero-width": "\u200b".join(phrase),
    }[disguise]
    text = " ".join([*before, shown, *after])
    guard = StreamGuard(phrases=PHRASES)
    released = _released(guard, _chunked(text, cuts))
    assert find_forbidden_phrase(released, PHRASES) is None
    # The whole text does contain it: the stream ends refused, its window never released.
    assert find_forbidden_phrase(guard.text, PHRASES) is not None


@settings(max_examples=100, deadline=None)
@given(
    words=st.lists(_WORDS.filter(lambda w: w not in {"money", "pricing"}), min_size=1, max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=30),
)
def test_a_clean_reply_is_released_whole_and_in_order(words: list[str], cuts: list[int]) -> None:
    text = "  " + " ".join(words) + " \n"
    guard = StreamGuard(phrases=PHRASES)
    released = _released(guard, _chunked(text, cuts))
    assert guard.tripped is None
    assert released + guard.rest() == text.strip()


@given(cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=10))
def test_a_refusal_opening_is_never_released(cuts: list[int]) -> None:
    text = "I can't help with that request, it is about internal things."
    guard = StreamGuard()
    assert _released(guard, _chunked(text, cuts)) == ""
    assert guard.tripped is not None and "refused" in guard.tripped


def test_an_answer_starting_like_a_refusal_is_released_once_it_is_not_one() -> None:
    guard = StreamGuard()
    assert guard.feed("I can") == ""
    released = guard.feed("'t helpfully say more than this: refunds take five days [1].")
    assert released.startswith("I can't helpfully")


def test_the_canary_secret_split_across_chunks_is_never_released() -> None:
    canary = "canary-5f1e2d3c4b5a"
    guard = StreamGuard(canary=canary)
    chunks = ["Here is the answer you wanted, all of it ", "and the code 5f1e", "2d3c4b5a", " ok"]
    released = _released(guard, chunks)
    assert "5f1e" not in released and guard.tripped is not None


def test_an_echo_of_the_system_message_is_held_until_it_cannot_complete() -> None:
    protected = "one two three four five six seven eight nine ten eleven twelve"
    guard = StreamGuard(protected=protected)
    released = _released(
        guard, ["Sure, here goes: one two three ", "four five six seven ", "eight"]
    )
    assert "one" not in released
    assert guard.feed(" nine ten") == "" and guard.tripped is not None


def test_release_keeps_a_window_of_letters_and_words() -> None:
    text = "alpha beta gamma delta"
    assert decide_release(text, 5, 0) == len("alpha beta gamma ")
    assert decide_release(text, 1, 2) == len("alpha beta ")
    assert decide_release(text, 100, 0) == 0
    assert normalise("ＡＢ") == "ab"
