"""Fetch the candidate into a staging file, resuming a cut transfer (HTTP Range), then verify it.

The staging file lies in the models directory (same filesystem, so the final rename is atomic) and
is named after the version, so a later run resumes only the same file. The live model is never
written to.
"""

from __future__ import annotations

import errno
import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from router.update.errors import UpdateFailed, UpdateRejected
from router.update.plan import Candidate, space_needed
from router.update.source import is_url

CHUNK = 1 << 20
Progress = Callable[[int, int | None], None]  # (bytes on disk, total bytes or None)


@dataclass(frozen=True)
class Fetched:
    path: Path
    size: int
    sha256: str
    resumed_from: int  # bytes already staged when this run began (0: a fresh download)
    received: int  # bytes this run transferred
    seconds: float


def check_space(folder: Path, candidate: Candidate, staged: int) -> None:
    needed = space_needed(candidate.size, staged)
    if needed is None:
        return
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise UpdateFailed(f"not enough space in {folder}: {needed / 1e6:.0f} MB needed (the file and a margin), "
                           f"{free / 1e6:.0f} MB free; free some (fewer versions kept: --keep) and run again")


def fetch(candidate: Candidate, staging: Path, on_progress: Progress, timeout_s: float = 60.0,
          attempts: int = 3) -> Fetched:
    """Download (or copy) into `staging`, resuming what is there; UpdateFailed when it cannot be finished."""
    started = time.monotonic()
    resumed_from = staging.stat().st_size if staging.exists() else 0
    if candidate.size is not None and resumed_from > candidate.size:
        staging.unlink()  # longer than the published file: not a part of it
        resumed_from = 0
    check_space(staging.parent, candidate, resumed_from)
    digest = _hash_of(staging) if resumed_from else hashlib.sha256()
    last_error = ""
    for _ in range(attempts):
        try:
            if is_url(candidate.location):
                digest = _http(candidate, staging, digest, on_progress, timeout_s)
            else:
                _copy(Path(candidate.location), staging, digest, on_progress)
            break
        except httpx.HTTPError as exc:  # a cut connection or a stall: resume from what arrived
            last_error = f"{exc.__class__.__name__}: {exc}"
        except OSError as exc:
            raise _disk_error(exc, staging) from exc
    else:
        raise UpdateFailed(f"downloading {candidate.location} failed {attempts} times (last: {last_error}); "
                           f"{staging.stat().st_size if staging.exists() else 0} bytes are kept in {staging} and "
                           "the next run resumes from there")
    size = staging.stat().st_size
    if candidate.size is not None and size != candidate.size:
        raise UpdateFailed(f"{candidate.location}: got {size} bytes, the source announced {candidate.size}; "
                           "run again (the download resumes)")
    return Fetched(staging, size, digest.hexdigest(), resumed_from, size - resumed_from,
                   time.monotonic() - started)


def verify(fetched: Fetched, expected: str | None) -> None:
    """UpdateRejected when the file is not the one published; the staging file is removed (it is wrong)."""
    if expected is not None and fetched.sha256 != expected:
        fetched.path.unlink(missing_ok=True)
        raise UpdateRejected(f"checksum mismatch: the downloaded file's sha256 is {fetched.sha256}, the source "
                             f"says {expected}; nothing was installed")


def _hash_of(path: Path) -> hashlib._Hash:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest


def _http(candidate: Candidate, staging: Path, digest: hashlib._Hash, on_progress: Progress,
          timeout_s: float) -> hashlib._Hash:
    have = staging.stat().st_size if staging.exists() else 0
    if candidate.size is not None and have == candidate.size:
        return digest
    headers = {"Range": f"bytes={have}-"} if have else {}
    if have and candidate.validator:
        headers["If-Range"] = candidate.validator  # a changed file comes back whole (200), not as a tail
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
    with httpx.stream("GET", candidate.location, headers=headers, timeout=timeout, follow_redirects=True) as response:
        if response.status_code == 416 and have:  # nothing left to send
            return digest
        response.raise_for_status()
        if have and response.status_code != 206:  # the server ignored the range: start over
            have, digest = 0, hashlib.sha256()
        total = candidate.size or _total(response, have)
        with staging.open("ab" if have else "wb") as out:
            for block in response.iter_bytes():  # as it arrives: a cut connection loses nothing received
                out.write(block)
                digest.update(block)
                have += len(block)
                on_progress(have, total)
    return digest


def _total(response: httpx.Response, have: int) -> int | None:
    length = response.headers.get("content-length")
    return have + int(length) if length and length.isdigit() else None


def _copy(source: Path, staging: Path, digest: hashlib._Hash, on_progress: Progress) -> None:
    have = staging.stat().st_size if staging.exists() else 0
    total = source.stat().st_size
    with source.open("rb") as src, staging.open("ab") as out:
        src.seek(have)
        for block in iter(lambda: src.read(CHUNK), b""):
            out.write(block)
            digest.update(block)
            have += len(block)
            on_progress(have, total)


def _disk_error(exc: OSError, path: Path) -> UpdateFailed:
    if exc.errno == errno.ENOSPC:
        return UpdateFailed(f"the disk holding {path.parent} is full; free space (fewer versions kept: --keep) and "
                            f"run again: the {path.name} part is kept and resumed")
    return UpdateFailed(f"cannot write {path}: {exc.strerror or exc}")
