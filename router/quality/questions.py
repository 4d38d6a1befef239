"""The questions `bluegreen compare` asks, with reference answers where known.

The default set is the migration plan's five questions plus the legal Q/A pairs shipped with
the backends (read as a data file by path: the router never imports the backend package).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from router.errors import CompareFailed

# The five questions of the migration plan's comparison script.
SEED_QUESTIONS: tuple[str, ...] = (
    "Что такое договор купли-продажи?",
    "Статья 105 УК РФ - что это?",
    "Как зарегистрировать ИП?",
    "Какие налоги платит ООО?",
    "Что делать при увольнении?",
)
SHIPPED_QA = Path(__file__).resolve().parents[2] / "model_backends" / "data" / "legal_qa_ru.tsv"


class QuestionsError(CompareFailed):
    """A questions file that cannot be used, with the line that says why."""


@dataclass(frozen=True)
class Question:
    text: str
    reference: str | None = None  # a known good answer, for chrF against it
    area: str | None = None


# How a line with 1, 2 or 3 tab-separated columns is read, as error messages name it.
TSV_LAYOUTS = {1: "question", 2: "question<TAB>reference", 3: "area<TAB>question<TAB>reference"}


def parse_tsv(text: str, source: str) -> list[Question]:
    """`question`, `question<TAB>reference` or `area<TAB>question<TAB>reference` per line (the shipped
    Q/A set's layout); `#` comments. The column count decides: a line with three columns has its question
    in the second, and an empty question column is an error that says which column it read."""
    questions = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) == 1:
            questions.append(Question(fields[0]))
        elif len(fields) == 2:
            questions.append(Question(fields[0], fields[1] or None))
        elif len(fields) == 3:
            questions.append(Question(fields[1], fields[2] or None, fields[0] or None))
        else:
            layouts = ", ".join(TSV_LAYOUTS.values())
            raise QuestionsError(f"{source}:{number}: expected 1 to 3 tab-separated columns ({layouts}), got {len(fields)}")
        if not questions[-1].text:
            column = 2 if len(fields) == 3 else 1
            hint = (f" (column 1, {fields[0]!r}, is read as the area; for a question and its reference write "
                    "question<TAB>reference)") if len(fields) == 3 and fields[0] else ""
            raise QuestionsError(f"{source}:{number}: the question is empty: a line with {len(fields)} tab-separated "
                                 f"columns is read as {TSV_LAYOUTS[len(fields)]}, and column {column} is empty{hint}")
    return questions


def parse_json(text: str, source: str) -> list[Question]:
    """A JSON list of strings or of objects with `question` and optional `reference`, `area`."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QuestionsError(f"{source}: not valid JSON: {exc}") from exc
    if not isinstance(items, list):
        raise QuestionsError(f"{source}: expected a JSON list of questions")
    questions = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            item = {"question": item}
        if not isinstance(item, dict) or not isinstance(item.get("question"), str) or not item["question"].strip():
            raise QuestionsError(f"{source}: item {index} needs a non-empty string `question`")
        reference, area = item.get("reference"), item.get("area")
        questions.append(Question(item["question"].strip(), reference if isinstance(reference, str) else None,
                                  area if isinstance(area, str) else None))
    return questions


def load_questions(path: Path) -> list[Question]:
    """Read a questions file (.json, else tab-separated text); refuses an empty or unreadable one."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (some editors write one) is not text
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionsError(f"cannot read the questions file {path}: {exc}") from exc
    questions = parse_json(text, str(path)) if path.suffix == ".json" else parse_tsv(text, str(path))
    if not questions:
        raise QuestionsError(f"{path}: no questions in it")
    return unique(questions)


def unique(questions: list[Question]) -> list[Question]:
    """Each question once, keeping the first reference given for it."""
    seen: dict[str, Question] = {}
    for question in questions:
        known = seen.get(question.text)
        if known is None:
            seen[question.text] = question
        elif known.reference is None and question.reference is not None:
            seen[question.text] = question
    return list(seen.values())


def default_questions() -> list[Question]:
    """The seed's five and, when the backends' data file is beside the router, the shipped Q/A set."""
    shipped = parse_tsv(SHIPPED_QA.read_text(encoding="utf-8-sig"), str(SHIPPED_QA)) if SHIPPED_QA.is_file() else []
    return unique([*(Question(text) for text in SEED_QUESTIONS), *shipped])
