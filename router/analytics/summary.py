"""Reading the analytics files back, and summing them up by colour, category, day or tier.

`summarize` is pure (records in, rows out), so the CLI and the operator console show the same figures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from router.analytics.rotation import rotated

By = Literal["colour", "category", "day", "tier"]
MAX_DAYS = 3650  # the longest look-back a summary takes (`--days`, `?days=`): ten years
GROUPINGS: tuple[By, ...] = ("colour", "category", "day", "tier")
ERROR_STATUS = 500  # a request counts as an error when it got a 5xx (the router's own 502/504 included)


@dataclass(frozen=True)
class SummaryRow:
    """Figures over one group of records (`key` "all" for the total). Times in seconds; None without data."""

    key: str
    requests: int
    errors: int
    error_rate: float
    p50_s: float | None
    p95_s: float | None
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    mean_answer_length: float | None
    prompt_tokens: int
    completion_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def files_of(path: Path) -> list[Path]:
    """The current file and its rotated ones that exist, oldest first."""
    older = []
    index = 1
    while rotated(path, index).exists():
        older.append(rotated(path, index))
        index += 1
    return [*reversed(older), *([path] if path.exists() else [])]


def read_records(path: Path, since: datetime | None = None,
                 warn: Callable[[str], None] = lambda message: None) -> list[dict[str, Any]]:
    """Every record in `path` and its rotated files (at or after `since`). A line that is not JSON is
    skipped with a warning: a torn last line is what a router killed mid-write leaves."""
    records = []
    for file in files_of(path):
        lines = file.read_bytes().split(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                torn = number == len(lines)  # no newline after it: the writer stopped in the middle
                warn(f"{file}: skipped {'a torn last line' if torn else f'line {number}, which is not JSON'}")
                continue
            if not isinstance(record, dict):
                warn(f"{file}: skipped line {number}, which is not a record")
                continue
            if since is not None and not at_or_after(record.get("timestamp"), since):
                continue
            records.append(record)
    return records


def at_or_after(timestamp: Any, since: datetime) -> bool:
    try:
        return datetime.fromisoformat(str(timestamp)) >= since
    except ValueError:
        return False


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (`share` in 0..1) of unsorted values; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def group_key(record: dict[str, Any], by: By) -> str:
    if by == "day":
        return str(record.get("timestamp", ""))[:10] or "unknown"
    value = record.get(by)
    return str(value) if value else ("anonymous" if by == "tier" else "none")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def summary_row(key: str, records: list[dict[str, Any]]) -> SummaryRow:
    """One pass over the records: the console's panel sums up every record of the window."""
    errors, prompt, completion = 0, 0.0, 0.0
    times: list[float] = []
    ttfts: list[float] = []
    lengths: list[float] = []
    for r in records:
        status = r.get("status")
        if isinstance(status, int) and status >= ERROR_STATUS:
            errors += 1
        if (time_s := _number(r.get("response_time_s"))) is not None:
            times.append(time_s)
        if (ttft := _number(r.get("ttft_s"))) is not None:
            ttfts.append(ttft)
        answered = r.get("colour") and isinstance(status, int) and status < 400
        if answered and (length := _number(r.get("answer_length"))) is not None:
            lengths.append(length)
        prompt += _number(r.get("prompt_tokens")) or 0.0
        completion += _number(r.get("completion_tokens")) or 0.0
    return SummaryRow(
        key=key, requests=len(records), errors=errors, error_rate=errors / len(records) if records else 0.0,
        p50_s=percentile(times, 0.50), p95_s=percentile(times, 0.95),
        ttft_p50_s=percentile(ttfts, 0.50), ttft_p95_s=percentile(ttfts, 0.95),
        mean_answer_length=sum(lengths) / len(lengths) if lengths else None,
        prompt_tokens=int(prompt), completion_tokens=int(completion),
    )


def summarize(records: Sequence[dict[str, Any]], by: By | None = None) -> list[SummaryRow]:
    """One row per group (sorted by key), or a single "all" row when `by` is None. The mean answer
    length counts answered requests only (a colour answered, below 400)."""
    if by is None:
        return [summary_row("all", list(records))]
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(group_key(record, by), []).append(record)
    return [summary_row(key, groups[key]) for key in sorted(groups)]
