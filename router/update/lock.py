"""One update per model name at a time: an exclusive lock on a file that names the holder's PID.

The operating system drops the lock when its process dies, so a lock file left by a dead run is
simply taken over.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from router.update.errors import UpdateFailed


class UpdateLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> UpdateLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UpdateFailed(f"cannot create the lock file {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UpdateFailed(f"another update of this model runs (PID {holder} holds {self.path}); "
                               "let it finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def held_by(path: Path) -> str | None:
    """The PID of the run that holds the lock at `path` now, None when none does (or there is no file).
    Only looks: takes nothing and creates nothing (for --dry-run)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    finally:
        os.close(fd)  # closing drops a lock taken just now
    return None
