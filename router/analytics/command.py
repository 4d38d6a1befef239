"""`bluegreen analytics`: the analytics files summed up, as a table or JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from router.analytics.summary import By, SummaryRow, files_of, read_records, summarize

EXIT_OK, EXIT_NO_DATA = 0, 1


def run_analytics(path: Path, days: float | None, by: By | None, as_json: bool, out: Console, errors: Console,
                  now: datetime | None = None) -> int:
    """Print the summary; exit 1 with a message when there is no file to read."""
    if not files_of(path):
        errors.print(f"[red]no analytics at {path}:[/] start the router with analytics.enabled (the default) and "
                     "send it requests, or point --path at its analytics.path")
        return EXIT_NO_DATA
    since = (now or datetime.now(UTC)) - timedelta(days=days) if days is not None else None
    records = read_records(path, since, warn=lambda message: errors.print(f"[yellow]warning:[/] {message}",
                                                                          highlight=False))
    total = summarize(records)[0]
    rows = summarize(records, by) if by is not None else []
    if as_json:
        body = {"path": str(path), "days": days, "by": by, "total": total.to_dict(), "rows": [r.to_dict() for r in rows]}
        out.print_json(json.dumps(body))
        return EXIT_OK
    out.print(table(rows, total, by, path, days))
    return EXIT_OK


def table(rows: list[SummaryRow], total: SummaryRow, by: By | None, path: Path, days: float | None) -> Table:
    span = f"last {days:g} days" if days is not None else "all time"
    view = Table(title=f"analytics from {path} ({span})")
    for name in (by or "", "requests", "errors", "error rate", "p50 s", "p95 s", "TTFT p50 s", "TTFT p95 s",
                 "mean answer chars", "prompt tokens", "completion tokens"):
        view.add_column(name, justify="left" if name == (by or "") else "right")
    for row in rows:
        view.add_row(*_cells(row))
    view.add_row(*_cells(total), style="bold", end_section=True)
    return view


def _cells(row: SummaryRow) -> list[str]:
    return [row.key, str(row.requests), str(row.errors), f"{row.error_rate:.1%}", _seconds(row.p50_s),
            _seconds(row.p95_s), _seconds(row.ttft_p50_s), _seconds(row.ttft_p95_s),
            "—" if row.mean_answer_length is None else f"{row.mean_answer_length:.0f}",
            str(row.prompt_tokens), str(row.completion_tokens)]


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
