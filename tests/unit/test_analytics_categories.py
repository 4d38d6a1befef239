"""The question classifier: inflected forms find their keywords, and accuracy on labelled questions."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.analytics.categories import classify, stems
from router.analytics.evaluation import labelled, legal_qa, measure
from router.analytics.names import CATEGORIES

QA_PATH = Path(__file__).resolve().parents[2] / "model_backends" / "data" / "legal_qa_ru.tsv"
TARGET = 0.85


@pytest.mark.parametrize(("question", "category"), [
    ("Как расторгнуть договор?", "contracts"),
    ("Что делать с договором, который не исполняют?", "contracts"),
    ("Поставщик нарушил условия договоров поставки", "contracts"),
    ("Сколько налогов платит самозанятый?", "tax_law"),
    ("Вернут ли мне налоговый вычет?", "tax_law"),
    ("Меня уволили без предупреждения", "labour_law"),
    ("Увольняют по сокращению, что положено?", "labour_law"),
    ("Что такое трудовой договор?", "labour_law"),  # the labour word outweighs "договор"
    ("У меня украли велосипед", "criminal_law"),
    ("За мошенничество посадят?", "criminal_law"),
    ("Как подать на развод и алименты?", "family_law"),
    ("Как вступить в наследство?", "family_law"),
    ("Соседи затопили мою квартиру", "housing"),
    ("Можно ли прописать ребёнка в квартире? Прописка", "housing"),
    ("Пришёл штраф ГИБДД, как обжаловать?", "administrative"),
    ("Как зарегистрировать ООО с двумя учредителями?", "business_law"),
    ("Какие налоги платит ООО?", "tax_law"),  # taxes decide against the company
    ("Как найти юриста?", "general"),
    ("Добрый день!", "general"),  # nothing matches
    ("", "general"),
])
def test_questions_fall_into_their_category_whatever_the_inflection(question: str, category: str) -> None:
    assert classify(question) == category


def test_stems_fold_inflections_and_keep_short_abbreviations_whole() -> None:
    assert stems("договором договора договор") == ["договор"] * 3
    assert stems("Уволили уволить")[0] == stems("Уволили уволить")[1]
    assert stems("ООО ИП НДС") == ["ооо", "ип", "ндс"]
    assert stems("ребёнок") == stems("ребенок")


def test_every_category_has_labelled_questions_and_only_known_ones() -> None:
    examples = labelled()
    assert len(examples) >= 150
    assert {category for _, category in examples} == set(CATEGORIES)


@pytest.mark.parametrize("half", ["held_out", "all"])
def test_accuracy_on_the_labelled_questions_reaches_the_target(half: str) -> None:
    accuracy = measure(labelled(half))
    assert accuracy.overall >= TARGET, accuracy.misses


def test_accuracy_on_the_legal_qa_questions_with_an_unambiguous_area() -> None:
    examples = legal_qa(QA_PATH)
    assert {category for _, category in examples} == {"criminal_law", "labour_law", "tax_law"}
    assert len(examples) >= 50
    accuracy = measure(examples)
    assert accuracy.overall >= TARGET, accuracy.misses


def test_measure_counts_confusions_and_finds_the_worst_category() -> None:
    accuracy = measure([("a", "tax_law"), ("b", "tax_law"), ("c", "housing")],
                       classifier={"a": "tax_law", "b": "housing", "c": "housing"}.__getitem__)
    assert accuracy.overall == pytest.approx(2 / 3)
    assert accuracy.of("tax_law") == 0.5 and accuracy.of("housing") == 1.0
    assert accuracy.worst() == "tax_law"
    assert accuracy.confusions == {("tax_law", "housing"): 1}
