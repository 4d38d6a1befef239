"""The `nginx_log` metrics source: follow nginx's JSON access log into per-colour windows.

Each line lists every upstream attempt of a request (`upstream_addr`, `upstream_status`, times),
so a green failure that nginx retried on blue still counts against green. The file is followed
across rotation: a new inode or a shorter file starts reading from the beginning.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from router.background import Periodic
from router.metrics import RouterMetrics
from router.rollout.windows import SlidingWindow
from router.weights import Colour

log = logging.getLogger("bluegreen.nginx_log")


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


def parse_line(line: str, colours: dict[str, Colour]) -> list[Attempt]:
    """Pure: the upstream attempts of one access-log line (none for lines nginx answered itself)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return []
    attempts = []
    for addr, status, total, header in zip(_split(entry.get("upstream_addr", "")), _split(entry.get("upstream_status", "")),
                                           _split(entry.get("upstream_response_time", "")),
                                           _split(entry.get("upstream_header_time", "")), strict=False):
        colour = colours.get(addr)
        if colour is None:
            continue
        code = int(status) if status.isdigit() else 502
        attempts.append(Attempt(colour, code, _seconds(total) or 0.0, _seconds(header), entry.get("uri", "")))
    return attempts


class AccessLogFollower(Periodic):
    name = "nginx-log"

    def __init__(self, path: Path, colours: dict[str, Colour], windows: dict[Colour, SlidingWindow],
                 metrics: RouterMetrics | None = None, interval_s: float = 0.2) -> None:
        super().__init__()
        self.path, self.colours, self.windows, self.interval_s = path, colours, windows, interval_s
        self.metrics = metrics  # with the nginx data plane, nginx's traffic is the router's exported traffic
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""

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
        for line in lines:
            attempts = parse_line(line.decode("utf-8", "replace"), self.colours)
            for attempt in attempts:
                self.windows[attempt.colour].add(attempt.ok, attempt.latency_s, attempt.header_s)
            if self.metrics is not None:
                self._export(attempts)
            recorded += len(attempts)
        return recorded

    def _export(self, attempts: list[Attempt]) -> None:
        """The same series the builtin data plane exports: nginx only tells a 5xx (or 502 for no answer)."""
        if self.metrics is None:
            return
        for attempt in attempts:
            self.metrics.observe_attempt(attempt.colour.value, attempt.path, attempt.status, attempt.latency_s,
                                         attempt.header_s)
            if not attempt.ok:
                self.metrics.upstream_errors.labels(attempt.colour.value, "status").inc()
        if len(attempts) > 1 and attempts[0].colour is Colour.green and not attempts[0].ok:
            self.metrics.retries.labels("status").inc()

    def start(self) -> None:
        if self.path.exists():  # judge only what happens from now on
            stat = os.stat(self.path)
            self._inode, self._offset = stat.st_ino, stat.st_size
        super().start()

    async def step(self) -> None:
        try:
            self.read_new()
        except OSError as exc:
            log.error("cannot read the nginx access log %s: %s", self.path, exc)
