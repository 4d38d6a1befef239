"""What the console's analytics panel costs the router per refresh: `GET /admin/analytics` reads its
records through one `RecordCache`. Over a generated set of analytics files (about 50 MB, current file
plus rotated ones), in one run: the uncached read (`read_records`, what `bluegreen analytics` does), the
cache's first call, a repeated call with nothing new, and one after new lines were appended; each with the
summary the route computes, and as a ratio of the first call.

    .venv/bin/python scripts/bench_analytics_read.py [--megabytes 50] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from router.analytics.reader import RecordCache  # noqa: E402
from router.analytics.record import SOURCE_ROUTER, AnalyticsRecord  # noqa: E402
from router.analytics.rotation import RotatingLines  # noqa: E402
from router.analytics.summary import read_records, summarize  # noqa: E402

console = Console(width=140)
FILE_BYTES = 10_000_000
CATEGORIES = ("contracts", "labour", "family", "housing", None)


def line(index: int) -> str:
    day = 1 + index % 28
    return AnalyticsRecord(
        timestamp=f"2026-11-{day:02d}T12:00:00.{index % 1000:03d}+00:00", request_id=f"req-{index:09d}",
        source=SOURCE_ROUTER, colour=("blue", "green")[index % 2], model="tiny", route="/api/v1/chat/legal",
        status=500 if index % 97 == 0 else 200, user=f"{index % 5000:064x}", tier=("free", "pro", None)[index % 3],
        question_length=40 + index % 300, answer_length=200 + index % 2000, prompt_tokens=20 + index % 100,
        completion_tokens=80 + index % 700, tokens_estimated=False, response_time_s=0.2 + (index % 900) / 100,
        ttft_s=0.05 + (index % 90) / 100, category=CATEGORIES[index % len(CATEGORIES)]).to_json()


def generate(path: Path, megabytes: float) -> int:
    """Lines until the files hold about `megabytes`; the number written."""
    target, written, index = int(megabytes * 1_000_000), 0, 0
    lines = RotatingLines(path, FILE_BYTES, keep=int(target / FILE_BYTES) + 1)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"writing {megabytes:g} MB of analytics lines", total=target)
        while written < target:
            batch = [line(index + i) for i in range(5000)]
            lines.write(batch)
            index += len(batch)
            size = sum(len(b) + 1 for b in batch)
            written += size
            progress.advance(task, size)
    lines.close()
    return index


def timed(call: Callable[[], Any], repeats: int) -> float:
    """Median seconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def panel(records: Callable[[], list[dict[str, Any]]]) -> Callable[[], Any]:
    """What the route did before the cache: read every file, then the total and the rows by category."""
    def call() -> Any:
        found = records()
        return summarize(found, None), summarize(found, "category")
    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=50.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "analytics.jsonl"
        count = generate(path, args.megabytes)
        size = sum(f.stat().st_size for f in Path(folder).iterdir())
        files = len(list(Path(folder).iterdir()))
        since = datetime.now(UTC) - timedelta(days=3650)  # the console asks for a window: every record is in it
        uncached = timed(panel(lambda: read_records(path, since)), 1)
        cache = RecordCache(path)

        def route() -> Any:
            return cache.summary("category", since)

        first = timed(route, 1)
        first_bytes = cache.bytes_read
        repeated = timed(route, args.repeats)
        repeated_bytes = (cache.bytes_read - first_bytes) / args.repeats
        appender = RotatingLines(path, FILE_BYTES, keep=files)
        appender.write(line(count + i) for i in range(100))
        appender.close()
        before = cache.bytes_read
        appended = timed(route, 1)
        appended_bytes = cache.bytes_read - before
    table = Table(title=f"GET /admin/analytics over {size / 1e6:.1f} MB in {files} files ({count} records), one run")
    for column in ("call", "ms", "vs first cached call", "bytes read"):
        table.add_column(column, justify="left" if column == "call" else "right")
    rows = [("uncached (read_records + summary)", uncached, size), ("cache: first call", first, first_bytes),
            (f"cache: repeated, nothing new (median of {args.repeats})", repeated, repeated_bytes),
            ("cache: after 100 new lines", appended, appended_bytes)]
    for name, seconds, read in rows:
        table.add_row(name, f"{seconds * 1000:.2f}", f"{seconds / first:.4f}", f"{read:,.0f}")
    console.print(table)
    console.print("cache: RecordCache.summary, what the route calls; a repeated call stats the files and "
                  "reuses the summary, a call after new lines reads and parses only those, then sums up again.")


if __name__ == "__main__":
    main()
