"""The shipped Russian legal text: question/answer pairs and a table of code articles."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

_VOWELS = set("аеёиоуыэюяАЕЁИОУЫЭЮЯ")


@dataclass(frozen=True)
class QAPair:
    area: str
    question: str
    answer: str


@dataclass(frozen=True)
class Article:
    code: str
    number: str
    topic: str  # prepositional case, as in «об убийстве»


def _rows(name: str) -> Iterator[list[str]]:
    text = resources.files("model_backends.data").joinpath(name).read_text(encoding="utf-8")
    lines = (line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    yield from csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)


def qa_pairs() -> list[QAPair]:
    """The hand-written questions and answers (civil, labour, criminal and tax basics)."""
    return [QAPair(area, question, answer) for area, question, answer in _rows("legal_qa_ru.tsv")]


def articles() -> list[Article]:
    return [Article(code, number, topic) for code, number, topic in _rows("articles_ru.tsv")]


def _about(topic: str) -> str:
    """Russian «о»/«об» before a prepositional phrase."""
    return f"об {topic}" if topic[0] in _VOWELS else f"о {topic}"


def article_pairs() -> list[QAPair]:
    """Questions and answers generated from the article table, two phrasings per article."""
    pairs = []
    for a in articles():
        answer = f"Статья {a.number} {a.code} говорит {_about(a.topic)}."
        pairs.append(QAPair("article", f"Что регулирует статья {a.number} {a.code}?", answer))
        pairs.append(QAPair("article", f"О чём статья {a.number} {a.code}?", answer))
    return pairs


def all_pairs() -> list[QAPair]:
    return qa_pairs() + article_pairs()


def plain_sentences() -> list[str]:
    """Every sentence of the corpus as plain text (for tokenizer training)."""
    sentences: list[str] = []
    for pair in all_pairs():
        sentences += [pair.question, pair.answer]
    return sentences


def demo_questions() -> list[str]:
    """The hand-written questions: what the demo and load tests ask."""
    return [pair.question for pair in qa_pairs()]
