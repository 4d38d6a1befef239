"""The `nginx_log` metrics source: follow nginx's JSON access log into per-colour windows.

Each line lists every upstream attempt of a request (`upstream_addr`, `upstream_status`, times),
so a canary failure that nginx retried on the stable colour still counts against the canary. The file is followed
across rotation: a new inode or a shorter file starts reading from the beginning.

On start the follower reads back what the log holds of the windows' span (at each line's own `msec`), so a
router restarted mid-step judges the step on what nginx served before the restart too; see `read_back`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from router.background import Periodic
from router.dataplanes.nginx import upstream_addresses
from router.metrics import RouterMetrics
from router.rollout.windows import SlidingWindow
from router.weights import Colour

if TYPE_CHECKING:
    from router.dataplanes.nginx_ejection import EjectionChange, NginxEjectionWatch

log = logging.getLogger("bluegreen.nginx_log")

RESOLVE_EVERY_S = 10.0
READBACK_MAX_BYTES = 16 << 20  # on start, read back at most this much of the log's end (about 50 000 lines)
COLOUR_NAMES = frozenset(colour.value for colour in Colour)


@dataclass(frozen=True)
class Attempt:
    colour: Colour
    status: int
    latency_s: float
    header_s: float | None
    path: str = ""

    @property
    def ok(self) -> bool:
        return self.status < 500


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.replace(" : ", ", ").split(",")] if value else []


def _seconds(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def line_time(line: bytes) -> float | None:
    """The line's `msec` (seconds since the epoch, when nginx logged it), None where it has none. nginx's
    format puts it first, so it is read without parsing the whole line where it can be."""
    if line.startswith(b'{"msec":'):
        end = line.find(b",", 8)
        if end > 8:
            try:
                return float(line[8:end])
            except ValueError:
                pass
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    value = entry.get("msec") if isinstance(entry, dict) else None
    if isinstance(value, str):
        return _seconds(value)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_entry(line: str, colours: dict[str, Colour],
                unknown: set[str] | None = None) -> tuple[Colour | None, list[Attempt]]:
    """Pure: the colour nginx chose for one access-log line and the line's upstream attempts (none for
    lines nginx answered itself); an address that is no colour's goes into `unknown`. The chosen colour
    is None where an attempt was dropped that way: which attempt came first is then unknown."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None, []
    if not isinstance(entry, dict):
        return None, []
    chosen = entry.get("colour")
    attempts = []
    complete = True
    for addr, status, total, header in zip(_split(entry.get("upstream_addr", "")), _split(entry.get("upstream_status", "")),
                                           _split(entry.get("upstream_response_time", "")),
                                           _split(entry.get("upstream_header_time", "")), strict=False):
        colour = colours.get(addr)
        if colour is None:
            if ":" in addr:  # not nginx's own "-" or an upstream group's name
                complete = False
                if unknown is not None:
                    unknown.add(addr)
            continue
        code = int(status) if status.isdigit() else 502
        attempts.append(Attempt(colour, code, _seconds(total) or 0.0, _seconds(header), entry.get("uri", "")))
    return (Colour(chosen) if chosen in COLOUR_NAMES and complete else None), attempts


class AccessLogFollower(Periodic):
    """Follows the log into the windows. Backends named by DNS (Services, compose names) are matched by
    the addresses they resolve to, asked again when nginx logs one the follower does not know."""

    name = "nginx-log"

    def __init__(self, path: Path, urls: dict[Colour, str], windows: dict[Colour, SlidingWindow],
                 metrics: RouterMetrics | None = None, interval_s: float = 0.2,
                 on_line: Callable[[str], None] | None = None, ejections: NginxEjectionWatch | None = None,
                 on_ejection: Callable[[EjectionChange], None] | None = None) -> None:
        super().__init__()
        self.path, self.urls, self.windows, self.interval_s = path, urls, windows, interval_s
        self.on_line = on_line  # every whole line, as read (the usage analytics' nginx source)
        self.ejections, self.on_ejection = ejections, on_ejection  # what nginx's passive health check holds down
        self.colours = upstream_addresses(urls)
        self.metrics = metrics  # with the nginx data plane, nginx's traffic is the router's exported traffic
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""
        self._resolved_at = time.monotonic()
        self._unmatched: set[str] = set()  # addresses already reported as no colour's

    def read_new(self) -> int:
        """Read what was appended since the last call; the number of attempts recorded."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return 0
        if stat.st_ino != self._inode or stat.st_size < self._offset:  # rotated or truncated
            self._inode, self._offset, self._partial = stat.st_ino, 0, b""
        if stat.st_size == self._offset:
            return 0
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            data = self._partial + handle.read()
            self._offset = handle.tell()
        *lines, self._partial = data.split(b"\n")
        recorded = 0
        unknown: set[str] = set()
        for line in lines:
            text = line.decode("utf-8", "replace")
            if self.on_line is not None:
                self.on_line(text)
            chosen, attempts = parse_entry(text, self.colours, unknown)
            self._watch_ejections(chosen, attempts)
            for attempt in attempts:
                self.windows[attempt.colour].add(attempt.ok, attempt.latency_s, attempt.header_s)
            if self.metrics is not None:
                self._export(attempts)
            recorded += len(attempts)
        if unknown - self._unmatched:
            self._unknown_addresses(unknown - self._unmatched)
        return recorded

    def read_back(self) -> int:
        """Start following at the end of the log, having first recorded the requests the log already holds
        that fall within the windows' span, each at its own time (`msec` on the wall clock, placed on the
        windows' monotonic clock): so a router restarted mid-step judges the step on what nginx served
        before the restart too. Reads at most READBACK_MAX_BYTES (16 MiB) back from the end, from the first
        whole line there, so a large log does not hold up the start; only the current file is read, not
        one rotated away. A line nginx is still writing is kept and read as new once whole.

        Read-back lines are recorded in the windows only: no ejection is observed from them (the router
        that was running saw them, and nginx's ejection then has run its course or is seen again from the
        next failures), `on_line` is not called (the analytics already hold them) and the exported
        counters are not raised (the previous process exported them: counting them again would count them
        twice in a `rate`/`increase` across the restart). The number of attempts recorded."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return 0
        began = time.monotonic()
        self._inode, self._offset = stat.st_ino, stat.st_size  # should the read fail: from the end, as before
        start = max(0, stat.st_size - READBACK_MAX_BYTES)
        with open(self.path, "rb") as handle:
            handle.seek(max(0, start - 1))
            data = handle.read(stat.st_size - max(0, start - 1))
            self._offset = handle.tell()
        if start > 0:  # from the first whole line: the byte before `start` tells whether one begins there
            cut = data.find(b"\n")
            data = data[cut + 1:] if cut >= 0 else b""
        *lines, self._partial = data.split(b"\n")
        span = max((window.span_s for window in self.windows.values()), default=0.0)
        wall, mono = time.time(), time.monotonic()
        oldest = wall - span
        recorded = counted = 0
        first: float | None = None
        unknown: set[str] = set()
        for line in lines:
            logged = line_time(line)
            if logged is None:
                continue
            if first is None:
                first = logged
            if logged < oldest:
                continue
            at = mono - max(0.0, wall - logged)  # a line from a clock ahead of ours counts as now
            if at <= 0:
                continue
            _, attempts = parse_entry(line.decode("utf-8", "replace"), self.colours, unknown)
            for attempt in attempts:
                self.windows[attempt.colour].add(attempt.ok, attempt.latency_s, attempt.header_s, at=at)
            recorded += len(attempts)
            counted += 1
        if unknown - self._unmatched:
            self._unknown_addresses(unknown - self._unmatched)
        if counted or start > 0:
            cut_short = start > 0 and first is not None and first > oldest
            log.info("read back %d requests (%d attempts) of the last %.0f s from the nginx access log %s in %.2f s%s",
                     counted, recorded, span, self.path, time.monotonic() - began,
                     f"; only its last {READBACK_MAX_BYTES / (1 << 20):g} MiB were read, back to {wall - first:.0f} s ago"
                     if cut_short and first is not None else "")
        return recorded

    def _watch_ejections(self, chosen: Colour | None, attempts: list[Attempt]) -> None:
        if self.ejections is None or self.on_ejection is None:
            return
        change = self.ejections.observe(chosen, attempts, time.monotonic())
        if change is not None:
            self.on_ejection(change)

    def _unknown_addresses(self, unknown: set[str]) -> None:
        """nginx reached an address that is no colour's: a name that resolves elsewhere since (a reload,
        a rescheduled pod). Resolve again, at most every RESOLVE_EVERY_S; say so once per address."""
        now = time.monotonic()
        if now - self._resolved_at >= RESOLVE_EVERY_S:
            self._resolved_at = now
            self.colours = upstream_addresses(self.urls)
        still = {addr for addr in unknown if addr not in self.colours}
        if still:
            self._unmatched |= still
            log.warning("nginx logged upstream addresses that are no colour's (%s): those attempts are not judged; "
                        "backends: %s", ", ".join(sorted(still)), ", ".join(f"{c.value} {u}" for c, u in self.urls.items()))

    def _export(self, attempts: list[Attempt]) -> None:
        """The same series the builtin data plane exports: nginx only tells a 5xx (or 502 for no answer)."""
        if self.metrics is None:
            return
        for attempt in attempts:
            self.metrics.observe_attempt(attempt.colour.value, attempt.path, attempt.status, attempt.latency_s,
                                         attempt.header_s)
            if not attempt.ok:
                self.metrics.upstream_errors.labels(attempt.colour.value, "status").inc()
        if len(attempts) > 1 and not attempts[0].ok:  # the canary's failure, answered by the stable colour
            self.metrics.retries.labels("status").inc()

    async def start_after_read_back(self) -> None:
        """Read back the windows' span (`read_back`, in a thread: up to 16 MiB must not stall the event
        loop), so that the controller started next judges on it from its first tick; then follow. The
        windows have no other writer until the follower runs."""
        try:
            await asyncio.to_thread(self.read_back)
        except OSError as exc:
            log.error("cannot read back the nginx access log %s: %s", self.path, exc)
        self.start()

    async def step(self) -> None:
        try:
            self.read_new()
        except OSError as exc:
            log.error("cannot read the nginx access log %s: %s", self.path, exc)
        if self.ejections is not None and self.on_ejection is not None:
            for change in self.ejections.expire(time.monotonic()):
                self.on_ejection(change)
