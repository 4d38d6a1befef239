"""How well the analytics' category classifier does: accuracy per category and overall, and what the
worst category is mistaken for.

Sets: the labelled questions shipped in router/analytics/data/ (the half the keywords were chosen on,
and the held-out half, reported apart), and the legal Q/A questions of model_backends/data/ whose
area maps onto one category (criminal, labour, tax).

    .venv/bin/python scripts/classifier_accuracy.py [--misses]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from router.analytics.evaluation import Accuracy, labelled, legal_qa, measure  # noqa: E402
from router.analytics.names import CATEGORIES  # noqa: E402

QA_PATH = Path(__file__).resolve().parents[1] / "model_backends" / "data" / "legal_qa_ru.tsv"
console = Console(width=120)


def report(name: str, accuracy: Accuracy, show_misses: bool) -> None:
    table = Table(title=f"{name}: overall {accuracy.overall:.3f} ({sum(accuracy.right.values())}/"
                        f"{sum(accuracy.total.values())})")
    table.add_column("category")
    table.add_column("accuracy", justify="right")
    table.add_column("right / total", justify="right")
    for category in CATEGORIES:
        if accuracy.total[category]:
            table.add_row(category, f"{accuracy.of(category):.2f}", f"{accuracy.right[category]}/{accuracy.total[category]}")
    console.print(table)
    worst = accuracy.worst()
    if worst is not None and accuracy.of(worst) < 1.0:
        mistaken = [f"{got} ×{count}" for (expected, got), count in accuracy.confusions.most_common() if expected == worst]
        console.print(f"worst: {worst}, taken for {', '.join(mistaken)}")
    if show_misses:
        for question, expected, got in accuracy.misses:
            console.print(f"  [dim]{expected} → {got}:[/] {question}", markup=True, highlight=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--misses", action="store_true", help="list every misclassified question")
    args = parser.parse_args()
    report("labelled, tuning half", measure(labelled("tune")), args.misses)
    report("labelled, held-out half", measure(labelled("held_out")), args.misses)
    report("labelled, all", measure(labelled("all")), False)
    report("legal Q/A (criminal, labour, tax)", measure(legal_qa(QA_PATH)), args.misses)


if __name__ == "__main__":
    main()
