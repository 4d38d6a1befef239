"""The analytics file: size rotation keeping `keep` files, the writer's thread, its bounded queue, the salt."""

from __future__ import annotations

import asyncio
import http.server
import json
import stat
import threading
from pathlib import Path

from router.analytics.options import AnalyticsOptions
from router.analytics.record import Seen
from router.analytics.rotation import RotatingLines, rotated
from router.analytics.summary import files_of, read_records
from router.analytics.writer import MODEL_LOOKUP_EVERY_S, AnalyticsWriter, load_salt
from router.metrics import RouterMetrics


def line(number: int) -> str:
    return json.dumps({"n": number, "pad": "x" * 20})


def test_files_rotate_by_size_and_only_keep_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = RotatingLines(path, max_bytes=100, keep=2)
    for number in range(20):
        lines.write([line(number)])
    lines.close()
    assert files_of(path) == [rotated(path, 2), rotated(path, 1), path]
    assert not rotated(path, 3).exists()
    assert all(file.stat().st_size <= 100 for file in files_of(path))
    kept = [record["n"] for record in read_records(path)]
    assert kept == list(range(20 - len(kept), 20))  # the newest, oldest first, none torn or repeated
    assert all(file.read_bytes().endswith(b"\n") for file in files_of(path))


def test_keep_zero_leaves_the_current_file_only_and_a_long_line_gets_a_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    lines = RotatingLines(path, max_bytes=50, keep=0)
    lines.write([line(1), "y" * 200, line(2)])
    lines.close()
    assert files_of(path) == [path]
    assert [r["n"] for r in read_records(path)] == [2]


def test_a_file_already_there_is_appended_to_and_counted_towards_its_size(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(line(0) + "\n")
    lines = RotatingLines(path, max_bytes=len(line(0)) * 2 + 2, keep=1)
    lines.write([line(1), line(2)])
    lines.close()
    assert [r["n"] for r in read_records(path)] == [0, 1, 2]
    assert [r["n"] for r in read_records(rotated(path, 1))] == [0, 1]


def seen(number: int) -> Seen:
    body = json.dumps({"question": "Как вернуть налог?"}).encode()
    return Seen(1.0, f"req-{number}", "/api/v1/chat/legal", "green", 200, [], body, [b'{"answer": "ok"}'], 0.1, 0.05)


def writer(tmp_path: Path, metrics: RouterMetrics, **options: object) -> AnalyticsWriter:
    settings = AnalyticsOptions(path=tmp_path / "analytics.jsonl", flush_s=0.05, **options)  # type: ignore[arg-type]
    return AnalyticsWriter(settings, metrics, "X-User-ID", "X-User-Tier", lambda user, tier: tier)


def sample(metrics: RouterMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_the_writer_writes_every_submitted_request_once_and_counts_categories(tmp_path: Path) -> None:
    metrics = RouterMetrics()
    analytics = writer(tmp_path, metrics)

    async def run() -> None:
        analytics.start()
        for number in range(50):
            analytics.submit(seen(number))
            if number == 25:
                await asyncio.sleep(0.1)  # some written by the thread while it runs, the rest when it stops
        await analytics.stop()

    asyncio.run(run())
    records = read_records(tmp_path / "analytics.jsonl")
    assert [r["request_id"] for r in records] == [f"req-{n}" for n in range(50)]
    assert {r["category"] for r in records} == {"tax_law"}
    assert sample(metrics, "bluegreen_analytics_records_total", outcome="written") == 50
    assert sample(metrics, "bluegreen_requests_by_category_total", colour="green", category="tax_law") == 50


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Path) -> None:
    metrics = RouterMetrics()
    analytics = writer(tmp_path, metrics, queue_size=3)
    for number in range(5):  # the thread is not running: nothing drains
        analytics.submit(seen(number))
    assert sample(metrics, "bluegreen_analytics_records_total", outcome="dropped") == 2

    async def run() -> None:
        analytics.start()
        await analytics.stop()

    asyncio.run(run())
    assert [r["request_id"] for r in read_records(tmp_path / "analytics.jsonl")] == ["req-0", "req-1", "req-2"]


def test_the_salt_is_made_once_private_and_reused_unless_one_is_configured(tmp_path: Path) -> None:
    options = AnalyticsOptions(path=tmp_path / "runs" / "analytics.jsonl")
    first = load_salt(options)
    assert len(first) >= 32 and load_salt(options) == first
    assert stat.S_IMODE(options.salt_path().stat().st_mode) == 0o600
    configured = AnalyticsOptions(path=options.path, salt="from-the-environment")  # type: ignore[arg-type]
    assert load_salt(configured) == b"from-the-environment"


def test_a_file_that_cannot_be_written_drops_and_counts_and_the_writer_goes_on(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the analytics folder should be")
    metrics = RouterMetrics()
    settings = AnalyticsOptions(path=blocker / "analytics.jsonl", flush_s=0.05)
    analytics = AnalyticsWriter(settings, metrics, "X-User-ID", "X-User-Tier", lambda user, tier: tier)

    async def run() -> None:
        analytics.start()  # no salt file can be kept either: a random salt, and an error in the log
        for number in range(3):
            analytics.submit(seen(number))
        await asyncio.sleep(0.2)
        analytics.submit(seen(3))
        await analytics.stop()

    asyncio.run(run())
    assert sample(metrics, "bluegreen_analytics_records_total", outcome="dropped") == 4
    assert sample(metrics, "bluegreen_analytics_records_total", outcome="written") == 0


class ModelList(http.server.BaseHTTPRequestHandler):
    """A backend's /v1/models whose model the test changes (a model set anew through the admin API)."""

    name = "green-first.gguf"

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        body = json.dumps({"data": [{"id": type(self).name}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_answer_that_does_not_name_its_model_gets_the_backends_current_one(tmp_path: Path) -> None:
    ModelList.name = "green-first.gguf"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ModelList)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = AnalyticsOptions(path=tmp_path / "analytics.jsonl", flush_s=0.05)
    analytics = AnalyticsWriter(settings, RouterMetrics(), "X-User-ID", "X-User-Tier", lambda user, tier: tier,
                                {"green": f"http://127.0.0.1:{server.server_address[1]}"})

    async def written(count: int) -> None:
        while len(read_records(tmp_path / "analytics.jsonl")) < count:
            await asyncio.sleep(0.02)

    async def run() -> None:
        analytics.start()
        analytics.submit(seen(0))
        await written(1)
        ModelList.name = "green-second.gguf"
        learned = analytics._learned_at["green"]
        analytics.submit(seen(1))  # learned within the minute: not asked again
        await written(2)
        assert analytics._learned_at["green"] == learned  # a name served from memory does not renew itself
        analytics._learned_at["green"] -= MODEL_LOOKUP_EVERY_S  # a minute on (a model set anew since)
        analytics._next_lookup["green"] = 0.0
        analytics.submit(seen(2))  # asked again
        await analytics.stop()

    try:
        asyncio.run(asyncio.wait_for(run(), timeout=20))
    finally:
        server.shutdown()
    models = [r["model"] for r in read_records(tmp_path / "analytics.jsonl")]
    assert models == ["green-first.gguf", "green-first.gguf", "green-second.gguf"]
