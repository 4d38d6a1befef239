"""The models directory of one model name: versions, the `current` link, and the record of outcomes.

    models-dir/<name>/<version>/<file>   installed versions (the newest --keep stay)
    models-dir/<name>/current            symlink to the version the stable colour serves
    models-dir/<name>/update.json        current and rejected versions (by source fingerprint), and the
                                         cutover in flight ("pending") until its outcome is recorded
    models-dir/<name>/.staging/          downloads in progress (resumed by the next run)
    models-dir/<name>/update.lock        held while a run goes on
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from router.update.errors import UpdateFailed
from router.update.plan import Candidate, retry_rejected, stale_parts, to_prune

RECORD, CURRENT, STAGING, LOCK = "update.json", "current", ".staging", "update.lock"


class ModelsDir:
    def __init__(self, models_dir: Path, name: str) -> None:
        self.root = models_dir / name

    @property
    def record_path(self) -> Path:
        return self.root / RECORD

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK

    def staging(self, candidate: Candidate) -> Path:
        return self.root / STAGING / f"{candidate.version}-{candidate.file_name}.part"

    def installed(self, candidate: Candidate) -> Path:
        return self.root / candidate.version / candidate.file_name

    def prepare(self) -> None:
        """Create the folders; UpdateFailed saying why when the models directory cannot be written."""
        try:
            (self.root / STAGING).mkdir(parents=True, exist_ok=True)
            probe = self.root / STAGING / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise UpdateFailed(f"cannot write to the models directory {self.root}: {exc.strerror or exc}; "
                               "give the update's user write access to it (or choose another --models-dir)") from exc

    def read(self) -> dict[str, Any]:
        """The record of earlier runs ({} before the first)."""
        try:
            data: dict[str, Any] = json.loads(self.record_path.read_text())
        except (FileNotFoundError, NotADirectoryError):  # nothing recorded yet (prepare() says if it cannot be)
            return {}
        except (OSError, ValueError) as exc:
            raise UpdateFailed(f"cannot read {self.record_path}: {exc}; fix or remove it") from exc
        return data

    def _write(self, data: dict[str, Any]) -> None:
        """Replace the record in one rename, flushed first: a pending cutover must outlive a reboot."""
        temporary = self.record_path.with_suffix(".tmp")
        with temporary.open("w") as out:
            out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.record_path)
        folder = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def pending(self) -> dict[str, Any] | None:
        """The cutover a run started and did not see to its end (killed, or stopped following), if any."""
        entry = self.read().get("pending")
        return entry if isinstance(entry, dict) else None

    def set_pending(self, fresh: bool = False, **fields: Any) -> None:
        """Write the pending cutover (`fresh`: a new one) or add to it, before the step it covers."""
        data = self.read()
        data["pending"] = {**({} if fresh else data.get("pending") or {}), **fields}
        self._write(data)

    def clear_pending(self) -> None:
        data = self.read()
        if data.pop("pending", None) is not None:
            self._write(data)

    def install(self, staged: Path, candidate: Candidate) -> Path:
        """Move the verified staging file to `<version>/<file>` in one rename (same filesystem)."""
        target = self.installed(candidate)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        return target

    def promoted(self, candidate: Candidate, path: Path) -> None:
        """The version serves now: `current` points at it, and the record says so."""
        data = self.read()
        data.pop("pending", None)  # recorded in the same write that ends it
        data["previous"] = data.get("current")
        data["current"] = {"version": candidate.version, "fingerprint": candidate.fingerprint, "path": str(path),
                           "date": _today()}
        link = self.root / f".{CURRENT}.tmp"
        link.unlink(missing_ok=True)
        link.symlink_to(candidate.version, target_is_directory=True)
        os.replace(link, self.root / CURRENT)
        self._write(data)

    def rejected(self, candidate: Candidate, reason: str) -> None:
        """Not to be tried again until the source's fingerprint changes."""
        data = self.read()
        data.pop("pending", None)
        data.setdefault("rejected", {})[candidate.fingerprint] = {
            "version": candidate.version, "reason": reason[:500], "date": _today()}
        self._write(data)

    def retry(self, candidate: Candidate) -> str:
        """Forget `candidate`'s rejection (--retry-rejected); what was forgotten. UpdateFailed, with the
        record untouched, when it is not rejected."""
        try:
            retry = retry_rejected(candidate, self.read())
        except ValueError as exc:
            raise UpdateFailed(str(exc)) from exc
        self._write(retry.record)
        return retry.why

    def prune_staging(self, candidate: Candidate) -> list[tuple[str, int]]:
        """Delete partial downloads of versions other than `candidate` (the source no longer offers
        them, so nothing will resume them); (name, bytes) of each one removed."""
        folder = self.root / STAGING
        names = [path.name for path in folder.iterdir() if path.is_file()] if folder.is_dir() else []
        removed = []
        for name in stale_parts(names, self.staging(candidate).name):
            path = folder / name
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise UpdateFailed(f"cannot remove the stale partial download {path}: {exc.strerror or exc}") from exc
            removed.append((name, size))
        return removed

    def prune(self, keep: int) -> list[str]:
        """Delete installed versions beyond the newest `keep`, never the current or the previous one."""
        data = self.read()
        protected = {entry["version"] for entry in (data.get("current"), data.get("previous")) if entry}
        versions = [(path.name, path.stat().st_mtime) for path in self.root.iterdir()
                    if path.is_dir() and not path.is_symlink() and not path.name.startswith(".")]
        doomed = to_prune(versions, keep, protected)
        for version in doomed:
            shutil.rmtree(self.root / version, ignore_errors=True)
        return doomed


def _today() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
