"""Stop sequences over streamed text: what is sent, what is held back, where the answer ends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_backends.stops import StopMatcher, first_stop, partial_tail


def _run(stops: list[str], chunks: list[str]) -> tuple[list[str], bool]:
    """What each chunk releases (the flush last, when no stop ended the text) and whether one did."""
    matcher = StopMatcher(stops)
    sent = [matcher.feed(chunk) for chunk in chunks]
    if not matcher.stopped:
        sent.append(matcher.flush())
    return sent, matcher.stopped


@pytest.mark.parametrize(
    ("stops", "chunks", "sent", "stopped"),
    [
        # no stop sequence in the text: everything goes out, the possible beginning only at the end
        (["###"], ["Договор ", "аренды."], ["Договор ", "аренды.", ""], False),
        (["###"], ["Статья #", "5"], ["Статья ", "#5", ""], False),
        (["###"], ["итог ##"], ["итог ", "##"], False),  # held to the end, then it was answer text
        # a stop inside one chunk
        (["\n\n"], ["Ответ.\n\nВопрос"], ["Ответ."], True),
        # split across chunk boundaries, Cyrillic
        (["Вопрос:"], ["Ответ. Воп", "рос: ещё"], ["Ответ. ", ""], True),
        (["Вопрос:"], ["Ответ. В", "о", "п", "р", "о", "с", ":"], ["Ответ. ", "", "", "", "", "", ""], True),
        # a false start is released as soon as it cannot be a stop any more
        (["Вопрос:"], ["Вопрос", " права"], ["", "Вопрос права", ""], False),
        (["КОНЕЦ"], ["КОН", "ТРАКТ"], ["", "КОНТРАКТ", ""], False),
        # a stop at the very start: an empty answer
        (["###"], ["###", "всё остальное"], ["", ""], True),
        (["Стоп"], ["Сто", "п и дальше"], ["", ""], True),
        # several sequences: the earliest in the text wins
        (["конец", "\n"], ["строка\nещё конец"], ["строка"], True),
        (["конец", "\n"], ["всё, кон", "ец\nи"], ["всё, ", ""], True),
        (["abc", "bcd"], ["xab", "cd"], ["x", ""], True),
        # ... "earliest" meaning completed first, so the cut does not depend on the chunking
        (["abcd", "bc"], ["abcd"], ["a"], True),
        (["abcd", "bc"], ["ab", "cd"], ["", "a"], True),
        (["ab", "b"], ["xab"], ["x"], True),  # completed together: the longer one is cut
        # the held-back part is the longest possible beginning of any sequence
        (["ab", "aab"], ["xaa", "b"], ["x", ""], True),
        (["ab", "aab"], ["xaa", "c"], ["x", "aac", ""], False),
        # a repeated character that may start a sequence more than once
        (["aab"], ["aaaa", "b!"], ["aa", ""], True),
        # empty chunks change nothing
        (["###"], ["", "да", "", "#"], ["", "да", "", "", "#"], False),
    ],
)
def test_stop_matching_table(stops: list[str], chunks: list[str], sent: list[str], stopped: bool) -> None:
    assert _run(stops, chunks) == (sent, stopped)


def test_after_a_stop_nothing_more_is_sent() -> None:
    matcher = StopMatcher(["."])
    assert matcher.feed("Да. Нет") == "Да"
    assert (matcher.feed("ещё"), matcher.flush()) == ("", "")


def test_empty_stop_sequence_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        StopMatcher(["ok", ""])


@pytest.mark.parametrize(
    ("text", "stops", "index", "tail"),
    [("абв", ["г"], None, 0), ("абвг", ["вг", "б"], 1, 0), ("абв", ["вгд"], None, 1), ("абв", ["бвг"], None, 2),
     ("", ["x"], None, 0), ("x", ["x"], 0, 0)],
)
def test_first_stop_and_partial_tail(text: str, stops: list[str], index: int | None, tail: int) -> None:
    assert first_stop(text, stops) == index
    assert partial_tail(text, stops) == tail


ALPHABET = "абв\n "


@given(
    text=st.text(alphabet=ALPHABET, max_size=40),
    stops=st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=4), min_size=1, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
)
def test_any_chunking_sends_the_text_up_to_the_first_stop(text: str, stops: list[str], cuts: list[int]) -> None:
    """However the text is split into pieces, what is sent is the text before the first completed
    stop sequence: the same answer streamed or not, and nothing sent is ever taken back."""
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    chunks = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    sent, stopped = _run(stops, chunks)
    cut = first_stop(text, stops)
    expected = text if cut is None else text[:cut]
    assert "".join(sent) == expected and stopped == (cut is not None)
