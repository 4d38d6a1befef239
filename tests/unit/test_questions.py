"""Questions files for `bluegreen compare`: the three tab-separated layouts, an empty question column that
says which column it read, and a UTF-8 byte-order mark that is not part of the first question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.quality.questions import SHIPPED_QA, Question, QuestionsError, load_questions, parse_tsv

BOM = "\ufeff"


def test_one_two_or_three_columns_are_question_reference_and_area() -> None:
    text = "# a comment\nВопрос один?\nВопрос два?\tОтвет два.\nаренда\tВопрос три?\tОтвет три.\n\n"
    assert parse_tsv(text, "q.tsv") == [Question("Вопрос один?"), Question("Вопрос два?", "Ответ два."),
                                        Question("Вопрос три?", "Ответ три.", "аренда")]


def test_three_columns_with_an_empty_question_column_say_which_column_was_read() -> None:
    with pytest.raises(QuestionsError) as raised:
        parse_tsv("Вопрос?\t\tОтвет.", "q.tsv")
    message = str(raised.value)
    assert message.startswith("q.tsv:1: the question is empty")
    assert "area<TAB>question<TAB>reference, and column 2 is empty" in message
    assert "column 1, 'Вопрос?', is read as the area" in message and "question<TAB>reference" in message


def test_two_columns_with_an_empty_question_column_say_so() -> None:
    with pytest.raises(QuestionsError, match=r"q.tsv:2: .*read as question<TAB>reference, and column 1 is empty"):
        parse_tsv("Вопрос?\n\tОтвет.", "q.tsv")


def test_four_columns_name_the_layouts() -> None:
    with pytest.raises(QuestionsError, match="expected 1 to 3 tab-separated columns .*area<TAB>question<TAB>"
                                             "reference.*got 4"):
        parse_tsv("a\tb\tc\td", "q.tsv")


@pytest.mark.parametrize("name", ["questions.tsv", "questions.txt"])
def test_a_byte_order_mark_is_not_part_of_the_first_question(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(BOM + "Что такое договор?\tСоглашение.\nКак зарегистрировать ИП?\n", encoding="utf-8")
    assert [q.text for q in load_questions(path)] == ["Что такое договор?", "Как зарегистрировать ИП?"]
    path.write_text(BOM + "аренда\tЧто такое аренда?\tНаём.\n", encoding="utf-8")
    assert load_questions(path) == [Question("Что такое аренда?", "Наём.", "аренда")]


def test_a_json_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "questions.json"
    items = ["Что такое договор?", {"question": "Что такое аренда?", "reference": "Наём.", "area": "аренда"}]
    path.write_text(BOM + json.dumps(items, ensure_ascii=False), encoding="utf-8")
    assert load_questions(path) == [Question("Что такое договор?"), Question("Что такое аренда?", "Наём.", "аренда")]


def test_the_shipped_set_is_read_as_area_question_reference() -> None:
    if not SHIPPED_QA.is_file():
        pytest.skip("the backends' data file is not beside the router")
    questions = load_questions(SHIPPED_QA)
    assert questions and all(q.area and q.reference for q in questions)
