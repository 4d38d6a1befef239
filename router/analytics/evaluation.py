"""The category classifier measured on labelled questions: per-category accuracy and confusions.

Two sets: the labelled questions shipped with the package (every category; even lines were used to
choose the keywords, odd lines were held out), and the model backends' legal Q/A file, whose coarse
areas map onto a category where that is unambiguous (civil law spans several, so it is left out).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from router.analytics.categories import classify
from router.analytics.names import CATEGORIES

LABELLED = "categories_ru.tsv"
# The legal Q/A file's areas that name one category; "civil" spans contracts, family, housing, business.
QA_AREAS = {"criminal": "criminal_law", "labour": "labour_law", "tax": "tax_law"}

Example = tuple[str, str]  # (question, category)


@dataclass
class Accuracy:
    total: Counter[str] = field(default_factory=Counter)
    right: Counter[str] = field(default_factory=Counter)
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (expected, got)
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # (question, expected, got)

    @property
    def overall(self) -> float:
        count = sum(self.total.values())
        return sum(self.right.values()) / count if count else 0.0

    def of(self, category: str) -> float:
        return self.right[category] / self.total[category] if self.total[category] else 0.0

    def worst(self) -> str | None:
        """The category with the lowest accuracy among those with examples."""
        present = [c for c in CATEGORIES if self.total[c]]
        return min(present, key=self.of) if present else None


def measure(examples: Iterable[Example], classifier: Callable[[str], str] = classify) -> Accuracy:
    result = Accuracy()
    for question, expected in examples:
        got = classifier(question)
        result.total[expected] += 1
        if got == expected:
            result.right[expected] += 1
        else:
            result.confusions[(expected, got)] += 1
            result.misses.append((question, expected, got))
    return result


def _rows(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")]


def labelled(half: str = "all") -> list[Example]:
    """The shipped labelled questions: "tune" (even lines), "held_out" (odd lines) or "all"."""
    text = resources.files("router.analytics").joinpath("data", LABELLED).read_text(encoding="utf-8")
    examples = [(row[0], row[1]) for row in _rows(text)]
    unknown = {category for _, category in examples} - set(CATEGORIES)
    if unknown:
        raise ValueError(f"{LABELLED} names unknown categories: {', '.join(sorted(unknown))}")
    if half == "all":
        return examples
    return examples[0 if half == "tune" else 1::2]


def legal_qa(path: Path) -> list[Example]:
    """The legal Q/A file's questions whose area maps onto one category (format: area, question, answer)."""
    return [(row[1], QA_AREAS[row[0]]) for row in _rows(path.read_text(encoding="utf-8")) if row[0] in QA_AREAS]
