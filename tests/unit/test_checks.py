"""The answer checks, as tables: what each says about real-looking Russian, English, empty, looping,
cut-off and refusing answers, and how alike two answers are."""

from __future__ import annotations

import pytest

from router.quality.checks import (
    AnswerChecks,
    PairChecks,
    check_answer,
    chrf,
    cyrillic_share,
    rates,
    refusal_phrase,
    repeated_ngram_share,
    stream_timing,
)

RUSSIAN = ("По договору купли-продажи продавец обязуется передать вещь в собственность покупателю, "
           "а покупатель обязуется принять товар и уплатить за него цену (статья 454 ГК РФ).")
ENGLISH = ("Under the civil code, a contract of sale obliges the seller to transfer the goods into the "
           "ownership of the buyer, and the buyer undertakes to pay the agreed price.")
LOOP = "право " * 40
RUSSIAN_LOOP = "Работник имеет право на отпуск. " * 10


@pytest.mark.parametrize(
    ("text", "finish", "failures"),
    [
        (RUSSIAN, "stop", ()),
        (ENGLISH, "stop", ("wrong_language",)),
        ("", "stop", ("empty",)),
        ("   \n\t ", "stop", ("empty",)),
        (LOOP, "length", ("repetitive", "truncated")),
        (RUSSIAN_LOOP, "stop", ("repetitive",)),
        (RUSSIAN[:60], "length", ("truncated",)),
        ("Извините, но я не могу ответить на этот вопрос.", "stop", ("refusal",)),
        ("I'm sorry, but I cannot help with legal questions.", "stop", ("wrong_language", "refusal")),
        ("К сожалению, я не могу дать юридическую консультацию.", "stop", ("refusal",)),
        # Russian legal text quoting Latin names is still Russian.
        ("Согласно GDPR и статье 152-ФЗ «О персональных данных», оператор обязан получить согласие.", "stop", ()),
        ("OK", "stop", ()),  # too few letters to judge the language
        ("Статья 105 УК РФ.", "stop", ()),
    ],
)
def test_check_answer(text: str, finish: str, failures: tuple[str, ...]) -> None:
    assert check_answer(text, finish).failures == failures


@pytest.mark.parametrize(
    ("text", "share"),
    [(RUSSIAN, 1.0), (ENGLISH, 0.0), ("", None), ("123 — 456!", None), ("Да yes", 0.4), ("ГК РФ 2024", 1.0)],
)
def test_cyrillic_share(text: str, share: float | None) -> None:
    assert cyrillic_share(text) == (pytest.approx(share) if share is not None else None)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [(RUSSIAN, 0.0, 0.0), (LOOP, 0.9, 1.0), (RUSSIAN_LOOP, 0.8, 1.0), ("", 0.0, 0.0), ("два слова", 0.0, 0.0)],
)
def test_repeated_ngram_share(text: str, low: float, high: float) -> None:
    assert low <= repeated_ngram_share(text) <= high


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Я не могу ответить на этот вопрос.", "я не могу ответить"),
        ("Как языковая модель, я не даю советов.", "как языковая модель"),
        ("I can\u2019t help with that.", "i can't help"),
        ("As an AI, I am unable to give legal advice.", "as an ai"),
        (RUSSIAN, None),
        ("Работник не может быть уволен в период отпуска.", None),
    ],
)
def test_refusal_phrase(text: str, phrase: str | None) -> None:
    assert refusal_phrase(text) == phrase


@pytest.mark.parametrize(
    ("hypothesis", "reference", "low", "high"),
    [
        (RUSSIAN, RUSSIAN, 99.9, 100.0),
        (RUSSIAN, ENGLISH, 0.0, 10.0),
        (RUSSIAN, RUSSIAN.replace("продавец", "поставщик"), 80.0, 99.9),
        (LOOP, RUSSIAN, 0.0, 15.0),
        ("", RUSSIAN, 0.0, 0.0),
    ],
)
def test_chrf(hypothesis: str, reference: str, low: float, high: float) -> None:
    score = chrf(hypothesis, reference)
    assert score is not None and low <= score <= high


def test_chrf_of_two_empty_answers_is_undefined() -> None:
    assert chrf("", "  ") is None


@pytest.mark.parametrize(
    ("blue", "green", "ratio", "similar"),
    [
        (RUSSIAN, RUSSIAN, 1.0, True),
        (RUSSIAN, "", 0.0, False),
        ("", RUSSIAN, None, False),
        ("Коротко.", "Коротко. " * 4, 35 / 8, True),
    ],
)
def test_pair_checks(blue: str, green: str, ratio: float | None, similar: bool) -> None:
    pair = PairChecks.of(blue, green)
    assert pair.length_ratio == (pytest.approx(ratio) if ratio is not None else None)
    assert (pair.chrf is not None and pair.chrf > 50) is similar


@pytest.mark.parametrize(
    ("offsets", "tokens", "ttft", "gap_p95", "per_token"),
    [
        ((), None, None, None, None),
        ((0.5,), 1, 0.5, None, None),
        ((0.5,), 10, 0.5, None, None),  # one chunk: no gaps, no per-token figure
        ((0.2, 0.3, 0.4, 1.4), 7, 0.2, 1.0, 0.2),
        ((1.0, 1.1, 1.2, 1.3, 1.4), 5, 1.0, 0.1, 0.1),
    ],
)
def test_stream_timing(offsets: tuple[float, ...], tokens: int | None, ttft: float | None,
                       gap_p95: float | None, per_token: float | None) -> None:
    timing = stream_timing(offsets, tokens)

    def approx(value: float | None) -> object:
        return pytest.approx(value) if value is not None else None

    assert (timing.ttft_s, timing.gap_p95_s, timing.per_token_s) == (approx(ttft), approx(gap_p95), approx(per_token))


def test_rates_over_many_answers() -> None:
    checks: list[AnswerChecks] = [check_answer(RUSSIAN, "stop")] * 6 + [check_answer(ENGLISH, "stop")] * 2 + [
        check_answer("", "stop"), check_answer(LOOP, "length")]
    summary = rates(checks)
    assert summary.answers == 10
    assert (summary.wrong_language, summary.empty, summary.repetitive, summary.truncated, summary.refusal) == (
        pytest.approx(0.2), pytest.approx(0.1), pytest.approx(0.1), pytest.approx(0.1), 0.0)
    assert rates([]).empty == 0.0 and rates([]).answers == 0
