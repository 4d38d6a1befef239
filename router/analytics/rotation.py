"""An append-only file of lines that rotates by size: PATH, then PATH.1 (newest rotated) … PATH.keep."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO


def rotated(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


class RotatingLines:
    """Whole lines only: a line never straddles two files, and a file starts a new one before it would
    pass `max_bytes` (a single longer line gets a file of its own)."""

    def __init__(self, path: Path, max_bytes: int, keep: int) -> None:
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        self._file: BinaryIO | None = None
        self._size = 0

    def write(self, lines: Iterable[str]) -> None:
        """Appends the lines, with one write() per file: another process appending to the same file
        (O_APPEND) cannot land in the middle of a line."""
        file = self._open()
        pending: list[bytes] = []
        for line in lines:
            data = (line + "\n").encode()
            if self._size and self._size + len(data) > self.max_bytes:
                _write_all(file, b"".join(pending))
                pending = []
                file = self._rotate()
            pending.append(data)
            self._size += len(data)
        _write_all(file, b"".join(pending))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> BinaryIO:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab", buffering=0)  # kept open across writes; close() closes it
            self._size = self._file.seek(0, os.SEEK_END)
        return self._file

    def _rotate(self) -> BinaryIO:
        self.close()
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
        else:
            rotated(self.path, self.keep).unlink(missing_ok=True)
            for index in range(self.keep - 1, 0, -1):
                if rotated(self.path, index).exists():
                    os.replace(rotated(self.path, index), rotated(self.path, index + 1))
            os.replace(self.path, rotated(self.path, 1))
        return self._open()


def _write_all(file: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = file.write(view)
        if not written:
            raise OSError(f"could not append to {file.name}")
        view = view[written:]
