"""On start, the nginx access-log follower reads back the windows' span of the log, each line at its own time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from router.dataplanes import nginx_log
from router.dataplanes.nginx_ejection import EjectionChange, NginxEjectionWatch
from router.dataplanes.nginx_log import AccessLogFollower, line_time
from router.metrics import RouterMetrics
from router.rollout.windows import SlidingWindow
from router.weights import Colour

URLS = {Colour.blue: "http://127.0.0.1:8001", Colour.green: "http://127.0.0.1:8002"}
ADDR = {Colour.blue: "127.0.0.1:8001", Colour.green: "127.0.0.1:8002"}


def line(msec: float, colour: Colour = Colour.green, status: int = 200, first: Colour | None = None) -> str:
    """One line in nginx's `bg_json` format (nginx.conf.j2); `first` is where the first attempt went."""
    addr = ADDR[first or colour]
    served = (first or colour).value
    return (f'{{"msec":{msec:.3f},"colour":"{colour.value}","served":"{served}","status":{status},"request_time":0.120,'
            f'"upstream_addr":"{addr}","upstream_status":"{status}","upstream_response_time":"0.120",'
            '"upstream_header_time":"0.050","request_id":"r1","uri":"/v1/chat/completions"}\n')


def follower_for(log: Path, span_s: float = 60.0, **options: object) -> tuple[AccessLogFollower, dict[Colour, SlidingWindow]]:
    windows = {c: SlidingWindow(span_s) for c in Colour}
    return AccessLogFollower(log, URLS, windows, **options), windows  # type: ignore[arg-type]


def test_lines_within_the_span_count_at_their_own_time_and_older_ones_not(tmp_path: Path) -> None:
    now = time.time()
    log = tmp_path / "access.json"
    log.write_text(line(now - 3600) + line(now - 61) + line(now - 50) + line(now - 30, status=502) + line(now - 5)
                   + '{"status":429}\n' + "not json\n" + line(now - 2, Colour.blue))
    follower, windows = follower_for(log)
    assert follower.read_back() == 4  # the hour-old and 61-s-old lines are skipped, nginx's own 429 holds no attempt
    green = windows[Colour.green]
    assert (green.summary().requests, green.summary().errors) == (3, 1)
    assert green.summary(span_s=10).requests == 1  # only the one from 5 s ago: each sits at its own time
    assert green.summary(span_s=40).requests == 2 and green.summary(span_s=40).errors == 1
    assert windows[Colour.blue].summary(span_s=10).requests == 1
    assert follower.read_new() == 0  # what was read back is not read again


def test_the_span_is_the_windows_and_a_line_from_a_clock_ahead_counts_as_now(tmp_path: Path) -> None:
    now = time.time()
    log = tmp_path / "access.json"
    log.write_text(line(now - 50) + line(now - 20) + line(now + 30))
    follower, windows = follower_for(log, span_s=30)
    assert follower.read_back() == 2
    assert windows[Colour.green].summary(span_s=1).requests == 1  # the future line, placed now


def test_a_line_being_written_is_not_lost(tmp_path: Path) -> None:
    now = time.time()
    log = tmp_path / "access.json"
    torn = line(now - 1)
    log.write_text(line(now - 10) + torn[:40])
    follower, windows = follower_for(log)
    assert follower.read_back() == 1
    with log.open("a") as handle:
        handle.write(torn[40:])
    assert follower.read_new() == 1  # read whole, as a new line
    assert windows[Colour.green].summary().requests == 2


def test_the_read_back_is_bounded_and_starts_at_a_whole_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    now = time.time()
    lines = [line(now - 50 + i * 0.01) for i in range(1000)]
    size = len(lines[0])
    assert all(len(one) == size for one in lines)
    log = tmp_path / "access.json"
    log.write_text("".join(lines))
    caplog.set_level("INFO", "bluegreen.nginx_log")
    for bound, whole in ((100 * size, 100), (100 * size + 7, 100), (100 * size - 1, 99), (10 * size * 1000, 1000)):
        monkeypatch.setattr(nginx_log, "READBACK_MAX_BYTES", bound)
        follower, windows = follower_for(log)
        assert follower.read_back() == whole, bound
        assert windows[Colour.green].summary().requests == whole
    assert "read back 100 requests (100 attempts) of the last 60 s" in caplog.text
    assert "MiB were read, back to 41 s ago" in caplog.text  # the bound cut the span short, and the log says so


def test_read_back_lines_raise_no_ejection_analytics_line_or_counter(tmp_path: Path) -> None:
    """A request nginx chose green for that went straight to blue reads as an ejection: read back, it
    must not be reported again, nor written to the analytics or the exported counters twice."""
    now = time.time()
    log = tmp_path / "access.json"
    log.write_text(line(now - 10, status=502) + line(now - 5, Colour.green, first=Colour.blue))
    seen_lines: list[str] = []
    changes: list[EjectionChange] = []
    metrics = RouterMetrics()
    follower, windows = follower_for(log, metrics=metrics, on_line=seen_lines.append,
                                     ejections=NginxEjectionWatch(fail_timeout_s=10), on_ejection=changes.append)
    assert follower.read_back() == 2
    assert windows[Colour.green].summary().requests == 1 and windows[Colour.blue].summary().requests == 1
    assert seen_lines == [] and changes == [] and metrics.attempts.requests == {}
    assert metrics.registry.get_sample_value("bluegreen_upstream_errors_total", {"colour": "green", "kind": "status"}) == 0
    # What nginx logs from now on is followed as before: all of it.
    with log.open("a") as handle:
        handle.write(line(time.time(), Colour.green, first=Colour.blue))
    assert follower.read_new() == 1
    assert len(seen_lines) == 1 and [(c.colour, c.ejected) for c in changes] == [(Colour.green, True)]
    assert sum(metrics.attempts.requests.values()) == 1


def test_rotation_after_the_read_back_reads_the_new_file_from_its_start(tmp_path: Path) -> None:
    now = time.time()
    log = tmp_path / "access.json"
    log.write_text(line(now - 10) + line(now - 5))
    follower, windows = follower_for(log)
    assert follower.read_back() == 2
    log.rename(tmp_path / "access.json.1")
    log.write_text(line(now))
    assert follower.read_new() == 1
    log.write_text("")  # truncated in place (copytruncate)
    assert follower.read_new() == 0
    with log.open("a") as handle:
        handle.write(line(now))
    assert follower.read_new() == 1 and windows[Colour.green].summary().requests == 4


def test_no_log_yet_is_followed_from_its_start_once_it_appears(tmp_path: Path) -> None:
    log = tmp_path / "access.json"
    follower, windows = follower_for(log)
    assert follower.read_back() == 0
    log.write_text(line(time.time()) + line(time.time()))
    assert follower.read_new() == 2


def test_the_start_reads_back_before_following(tmp_path: Path) -> None:
    log = tmp_path / "access.json"
    log.write_text(line(time.time() - 20) + line(time.time() - 10))
    follower, windows = follower_for(log)

    async def started() -> int:
        await follower.start_after_read_back()  # the controller, started next, must see the span at its first tick
        counted = windows[Colour.green].summary().requests
        await follower.stop()
        return counted

    assert asyncio.run(started()) == 2


def test_line_time() -> None:
    assert line_time(b'{"msec":1700000000.123,"colour":"green"}') == 1700000000.123
    assert line_time(b'{"colour":"green","msec":1700000000.5}') == 1700000000.5  # not first: parsed whole
    assert line_time(b'{"msec":"1700000000.5"}') == 1700000000.5
    assert line_time(b'{"msec":true}') is None and line_time(b'{"status":429}') is None
    assert line_time(b"not json") is None and line_time(b"[1]") is None and line_time(b'{"msec":') is None
