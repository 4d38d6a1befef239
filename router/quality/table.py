"""The comparison in the terminal: a rich table of both colours' figures and the verdict with its reasons."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from router.quality.summary import Summary, figure_rows, fmt
from router.quality.verdict import Outcome, Verdict

_STYLE = {Outcome.passed: "bold green", Outcome.regressed: "bold red", Outcome.inconclusive: "bold yellow"}


def summary_table(summary: Summary) -> Table:
    table = Table(title="blue vs green", title_justify="left")
    table.add_column("figure")
    table.add_column("blue", justify="right", style="blue")
    table.add_column("green", justify="right", style="green")
    for label, blue, green in figure_rows(summary.blue, summary.green):
        table.add_row(label, blue, green)
    pair = summary.pair
    table.add_section()
    table.add_row("length ratio green/blue p50", "", fmt(pair.length_ratio_p50, digits=2))
    table.add_row("chrF green vs blue p50", "", fmt(pair.chrf_p50, digits=1))
    return table


def verdict_view(verdict: Verdict) -> Group:
    lines = [Text(f"verdict: {verdict.outcome.value}", style=_STYLE[verdict.outcome])]
    lines += [Text(f"  • {reason}") for reason in verdict.reasons]
    return Group(*lines)
