"""Reading analytics back (rotated files, a torn last line, --days) and the summary's figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from router.analytics.command import run_analytics
from router.analytics.reader import RecordCache
from router.analytics.rotation import RotatingLines
from router.analytics.summary import percentile, read_records, summarize


def record(colour: str | None = "blue", status: int = 200, time_s: float = 1.0, ttft_s: float | None = 0.1,
           answer: int = 100, category: str | None = "contracts", day: str = "2026-11-30", tier: str | None = "free",
           prompt: int | None = 10, completion: int | None = 20) -> dict:
    return {"timestamp": f"{day}T12:00:00.000+00:00", "colour": colour, "status": status, "response_time_s": time_s,
            "ttft_s": ttft_s, "answer_length": answer, "category": category, "tier": tier,
            "prompt_tokens": prompt, "completion_tokens": completion}


def write(path: Path, records: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.95) == 95 and percentile(values, 1.0) == 100
    assert percentile([3.0], 0.95) == 3.0 and percentile([], 0.5) is None
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0  # unsorted in


def test_the_total_row_sums_errors_times_lengths_and_tokens() -> None:
    records = [record(time_s=float(t), ttft_s=t / 10, answer=100 * t) for t in range(1, 11)]
    records += [record(status=502, time_s=30.0, ttft_s=None, answer=0, prompt=None, completion=None),
                record(colour=None, status=429, time_s=None, ttft_s=None, answer=0, category=None, prompt=None,
                       completion=None)]
    (total,) = summarize(records)
    assert (total.key, total.requests, total.errors) == ("all", 12, 1)
    assert total.error_rate == pytest.approx(1 / 12)
    assert total.p50_s == 6.0 and total.p95_s == 30.0  # nearest rank over the 11 timed requests (1..10, 30)
    assert total.ttft_p50_s == pytest.approx(0.5) and total.ttft_p95_s == pytest.approx(1.0)
    assert total.mean_answer_length == pytest.approx(550)  # answered requests only: not the 502 nor the 429
    assert (total.prompt_tokens, total.completion_tokens) == (100, 200)


@pytest.mark.parametrize(("by", "keys"), [
    ("colour", ["blue", "green", "none"]),
    ("category", ["contracts", "none", "tax_law"]),
    ("day", ["2026-11-29", "2026-11-30"]),
    ("tier", ["anonymous", "free", "premium"]),
])
def test_rows_group_by_colour_category_day_or_tier(by: str, keys: list[str]) -> None:
    records = [record(), record(colour="green", category="tax_law", tier="premium", day="2026-11-29"),
               record(colour=None, status=429, category=None, tier=None), record(colour="green", status=503)]
    rows = summarize(records, by)  # type: ignore[arg-type]
    assert [row.key for row in rows] == keys
    assert sum(row.requests for row in rows) == 4 and sum(row.errors for row in rows) == 1


def test_rotated_files_are_read_oldest_first_and_a_torn_last_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "analytics.jsonl"
    write(tmp_path / "analytics.jsonl.2", [record(answer=1)])
    write(tmp_path / "analytics.jsonl.1", [record(answer=2)])
    write(path, [record(answer=3), record(answer=4)], tail='{"timestamp": "2026-11-30T12:0')
    warnings: list[str] = []
    records = read_records(path, warn=warnings.append)
    assert [r["answer_length"] for r in records] == [1, 2, 3, 4]
    assert warnings == [f"{path}: skipped a torn last line"]


def test_a_bad_line_in_the_middle_is_named_and_days_keep_only_recent_records(tmp_path: Path) -> None:
    path = tmp_path / "analytics.jsonl"
    path.write_text(json.dumps(record(day="2026-11-01")) + "\nnot json\n" + json.dumps(record(day="2026-11-29")) + "\n")
    warnings: list[str] = []
    recent = read_records(path, since=datetime(2026, 11, 20, tzinfo=UTC), warn=warnings.append)
    assert [r["timestamp"][:10] for r in recent] == ["2026-11-29"]
    assert warnings == [f"{path}: skipped line 2, which is not JSON"]


def consoles() -> tuple[Console, Console]:
    return Console(record=True, width=200), Console(record=True, width=200)


def test_the_command_prints_json_totals_and_rows_and_warns_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "analytics.jsonl"
    write(path, [record(), record(colour="green"), record(colour="green", day="2026-10-01")], tail="{torn")
    out, errors = consoles()
    code = run_analytics(path, days=7, by="colour", as_json=True, out=out, errors=errors,
                         now=datetime(2026, 12, 1, tzinfo=UTC))
    assert code == 0
    body = json.loads(out.export_text())
    assert body["total"]["requests"] == 2 and body["by"] == "colour"
    assert {row["key"]: row["requests"] for row in body["rows"]} == {"blue": 1, "green": 1}
    assert "torn last line" in errors.export_text()


def test_the_command_prints_a_table_and_exits_1_without_a_file(tmp_path: Path) -> None:
    path = tmp_path / "analytics.jsonl"
    out, errors = consoles()
    assert run_analytics(path, None, None, False, out, errors) == 1
    assert "no analytics at" in errors.export_text() and out.export_text() == ""
    write(path, [record(category="housing"), record(category="tax_law")])
    out, errors = consoles()
    assert run_analytics(path, None, "category", False, out, errors) == 0
    text = out.export_text()
    assert "housing" in text and "tax_law" in text and "all" in text and errors.export_text() == ""


statuses = st.sampled_from([200, 200, 200, 429, 499, 502, 503])
records_strategy = st.lists(st.builds(
    record, colour=st.sampled_from(["blue", "green", None]), status=statuses,
    time_s=st.floats(0, 100, allow_nan=False), ttft_s=st.none() | st.floats(0, 10, allow_nan=False),
    answer=st.integers(0, 5000), category=st.sampled_from(["contracts", "tax_law", None]),
    day=st.sampled_from(["2026-11-29", "2026-11-30"]), tier=st.sampled_from(["free", None]),
    prompt=st.none() | st.integers(0, 500), completion=st.none() | st.integers(0, 500)), max_size=40)


@given(records_strategy, st.sampled_from(["colour", "category", "day", "tier"]))
def test_the_groups_add_up_to_the_total_and_percentiles_stay_within_the_data(records: list[dict], by: str) -> None:
    (total,) = summarize(records)
    rows = summarize(records, by)  # type: ignore[arg-type]
    for name in ("requests", "errors", "prompt_tokens", "completion_tokens"):
        assert sum(getattr(row, name) for row in rows) == getattr(total, name)
    times = [r["response_time_s"] for r in records]
    for row in [total, *rows]:
        assert 0 <= row.error_rate <= 1
        if row.p50_s is not None:
            assert min(times) <= row.p50_s <= row.p95_s <= max(times)


def test_the_cache_reads_only_new_bytes_and_never_a_rotated_file_again(tmp_path: Path) -> None:
    path = tmp_path / "analytics.jsonl"
    lines = RotatingLines(path, max_bytes=2000, keep=3)
    lines.write(json.dumps(record(time_s=i)) for i in range(30))  # several files
    cache = RecordCache(path)
    assert cache.records() == read_records(path)
    first = cache.bytes_read
    assert first == sum(f.stat().st_size for f in tmp_path.iterdir())
    assert cache.records() == read_records(path) and cache.bytes_read == first  # nothing changed: nothing read
    lines.write([json.dumps(record(time_s=99.0))])
    before = path.stat().st_size
    assert cache.records() == read_records(path)
    assert cache.bytes_read - first <= before  # the current file's new line (or the new file after a rotation)
    lines.write(json.dumps(record(time_s=100 + i)) for i in range(20))  # rotates: old files renamed, one dropped
    lines.close()
    read = cache.bytes_read
    assert cache.records() == read_records(path)
    assert cache.bytes_read - read < sum(f.stat().st_size for f in tmp_path.iterdir())  # renamed files not re-read


def test_the_cache_restarts_a_truncated_file_and_rereads_a_torn_tail_until_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "analytics.jsonl"
    write(path, [record(), record(colour="green")], tail='{"colour": "bl')
    cache, warnings = RecordCache(path), []
    assert [r["colour"] for r in cache.records(warn=warnings.append)] == ["blue", "green"]
    assert warnings == [f"{path}: skipped a torn last line"]
    with path.open("a") as file:
        file.write('ue", "status": 200}\n')
    assert [r["colour"] for r in cache.records()] == ["blue", "green", "blue"]
    write(path, [record(colour="green")])  # truncated and rewritten, shorter
    assert [r["colour"] for r in cache.records()] == ["green"]
    with path.open("a") as file:
        file.write("not json\n")
    assert [r["colour"] for r in cache.records(warn=warnings.append)] == ["green"]
    assert warnings[-1] == f"{path}: skipped line 2, which is not JSON"


def test_the_cache_filters_by_day_and_keeps_only_the_summary_fields(tmp_path: Path) -> None:
    path = tmp_path / "analytics.jsonl"
    write(path, [{**record(day="2026-11-01"), "question_hash": "x"}, record(day="2026-11-30")])
    cache = RecordCache(path)
    assert [r["timestamp"][:10] for r in cache.records(since=datetime(2026, 11, 15, tzinfo=UTC))] == ["2026-11-30"]
    assert "question_hash" not in cache.records()[0]
    assert summarize(cache.records(), "day") == summarize(read_records(path), "day")


def test_the_cached_summary_matches_a_fresh_one_as_files_grow_and_the_window_moves(tmp_path: Path) -> None:
    path = tmp_path / "analytics.jsonl"
    write(path, [record(day="2026-11-10"), record(day="2026-11-20", status=502), record(day="2026-11-28")])
    cache = RecordCache(path)

    def fresh(since: datetime | None) -> tuple:
        chosen = read_records(path, since)
        return summarize(chosen)[0], summarize(chosen, "day")

    for day in (None, 5, 15, 25, 29, 15):
        since = None if day is None else datetime(2026, 11, day, tzinfo=UTC)
        assert cache.summary("day", since) == fresh(since)
    since = datetime(2026, 11, 15, tzinfo=UTC)
    first = cache.summary("day", since)
    assert cache.summary("day", datetime(2026, 11, 16, tzinfo=UTC)) is first  # same records in the window: reused
    with path.open("a") as file:
        file.write(json.dumps(record(day="2026-11-29", colour="green")) + "\n")
    grown = cache.summary("day", since)
    assert grown == fresh(since) and grown[0].requests == first[0].requests + 1
