"""The analytics files read once: the console's panel asks every 10 s, and the files change only at the end.

A `RecordCache` keeps the parsed records of each file by its identity (device, inode), so a rotated
file (never written again, only renamed) is never read twice, and of the current file only the bytes
appended since the last call are read. A file that got shorter, or was rewritten in place, is read again
from the start. Only the fields the summaries use are kept, and files that are gone are forgotten, so the
cache holds no more than the files on disk.
"""

from __future__ import annotations

import bisect
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from router.analytics.summary import By, SummaryRow, at_or_after, files_of, summarize

SUMMARY_FIELDS = frozenset({"timestamp", "colour", "category", "tier", "status", "response_time_s", "ttft_s",
                            "answer_length", "prompt_tokens", "completion_tokens"})
Warn = Callable[[str], None]
FINGERPRINT_BYTES = 256
MAX_SUMMARIES = 32  # (by, window) pairs kept for one state of the files: the console asks for one
Summary = tuple[SummaryRow, list[SummaryRow]]


@dataclass
class _File:
    """What is parsed of one file: its complete lines up to `offset`."""

    offset: int = 0
    size: int = 0
    mtime_ns: int = 0
    lines: int = 0
    last: bytes = b""  # the bytes just before `offset`: a new file that got a deleted one's inode differs here
    records: list[dict[str, Any]] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)  # the records' times (those `at_or_after` can count)


def epoch(timestamp: Any) -> float | None:
    """`timestamp` in seconds since the epoch, None where `at_or_after` would never count it."""
    try:
        moment = datetime.fromisoformat(str(timestamp))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def parse_line(line: bytes) -> dict[str, Any] | str | None:
    """The record on `line`; None for a blank line; a reason (str) when it is not a record."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return "not JSON"
    return {k: v for k, v in record.items() if k in SUMMARY_FIELDS} if isinstance(record, dict) else "not a record"


class RecordCache:
    """The records of one analytics path and its rotated files, re-read only where they changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._files: dict[tuple[int, int], _File] = {}
        self._lock = threading.Lock()  # the route reads in a worker thread; two consoles may ask at once
        self.bytes_read = 0  # for the benchmark and tests: what the last calls cost in reading
        self._signature: tuple[tuple[int, int, int, int], ...] = ()  # (device, inode, size, mtime) per file, last call
        self._stamps: list[float] = []  # the records' timestamps, sorted, for this signature
        self._summaries: dict[tuple[By, int], Summary] = {}  # for this signature

    def records(self, since: datetime | None = None, warn: Warn = lambda message: None) -> list[dict[str, Any]]:
        """The records (summary fields only) at or after `since`, oldest file first."""
        with self._lock:
            every = self._refresh(warn)
        return every if since is None else [r for r in every if at_or_after(r.get("timestamp"), since)]

    def summary(self, by: By, since: datetime | None = None, warn: Warn = lambda message: None) -> Summary:
        """The total row and the rows by `by` of the records at or after `since`, summed up again only when
        the files changed or a record left the window: with the files as they were, the records at or
        after `since` are told apart by their number alone (a later `since` keeps a subset of them)."""
        with self._lock:
            every = self._refresh(warn)
            window = -1 if since is None else len(self._stamps) - bisect.bisect_left(self._stamps, since.timestamp())
            key = (by, window)
            if key not in self._summaries:
                if len(self._summaries) >= MAX_SUMMARIES:
                    self._summaries.clear()
                chosen = every if since is None else [r for r in every if at_or_after(r.get("timestamp"), since)]
                self._summaries[key] = (summarize(chosen)[0], summarize(chosen, by))
            return self._summaries[key]

    def _refresh(self, warn: Warn) -> list[dict[str, Any]]:
        """Every record, reading only what changed; a new signature forgets the summaries."""
        every: list[dict[str, Any]] = []
        stamps: list[float] = []
        signature: list[tuple[int, int, int, int]] = []
        for file in files_of(self.path):
            try:
                records, times = self._read(file, signature, warn)
                every.extend(records)
                stamps.extend(times)
            except FileNotFoundError:  # rotated away between listing and reading: its records come next call
                continue
        seen = {(dev, inode) for dev, inode, _, _ in signature}
        for gone in set(self._files) - seen:
            del self._files[gone]
        if tuple(signature) != self._signature:
            self._signature, self._summaries = tuple(signature), {}
            self._stamps = sorted(stamps)
        return every

    def _read(self, file: Path, signature: list[tuple[int, int, int, int]], warn: Warn) -> tuple[list[dict[str, Any]], list[float]]:
        """The file's records and their times, parsing only the lines after what was parsed of it before."""
        with open(file, "rb") as handle:
            info = os.fstat(handle.fileno())
            size = info.st_size
            identity = (info.st_dev, info.st_ino)
            signature.append((*identity, size, info.st_mtime_ns))
            state = self._files.get(identity)
            if state is None or not _same_file(handle, state, size, info.st_mtime_ns):
                state = self._files[identity] = _File()
            if size != state.offset:
                handle.seek(state.offset)
                data = handle.read(size - state.offset)
                self.bytes_read += len(data)
            else:
                data = b""
        state.size, state.mtime_ns = size, info.st_mtime_ns
        complete, newline, tail = data.rpartition(b"\n")
        if newline:
            for line in complete.split(b"\n"):
                state.lines += 1
                parsed = parse_line(line)
                if isinstance(parsed, dict):
                    state.records.append(parsed)
                    if (stamp := epoch(parsed.get("timestamp"))) is not None:
                        state.stamps.append(stamp)
                elif parsed is not None:
                    warn(f"{file}: skipped line {state.lines}, which is {parsed}")
            state.offset += len(complete) + 1
            state.last = (state.last + complete + newline)[-FINGERPRINT_BYTES:]
        parsed_tail = parse_line(tail)  # no newline after it yet: read again next time, not kept
        if isinstance(parsed_tail, dict):
            stamp = epoch(parsed_tail.get("timestamp"))
            return [*state.records, parsed_tail], [*state.stamps, *([] if stamp is None else [stamp])]
        if parsed_tail is not None:
            warn(f"{file}: skipped a torn last line")
        return state.records, state.stamps


def _same_file(handle: BinaryIO, state: _File, size: int, mtime_ns: int) -> bool:
    """Whether the open file is the one `state` parsed, unchanged or only appended to: not shorter, not
    rewritten at the same size, and with the bytes before the offset as they were."""
    if size < state.size or (size == state.size and mtime_ns != state.mtime_ns):
        return False
    handle.seek(state.offset - len(state.last))
    return handle.read(len(state.last)) == state.last
