"""The update's files: the models folder's record and `current` link, pruning, the lock, a resumed copy."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from router.update.download import fetch, verify
from router.update.errors import UpdateFailed, UpdateRejected
from router.update.history import ModelsDir
from router.update.lock import UpdateLock, held_by
from router.update.plan import Candidate, decide
from router.update.source import check_source


def candidate(version: str, location: str = "/nowhere", size: int | None = None) -> Candidate:
    return Candidate(name="saiga", version=version, location=location, file_name="saiga.gguf",
                     fingerprint=f"fp-{version}", size=size)


def installed(models: ModelsDir, version: str, mtime: float) -> Path:
    staged = models.root / ".staging" / f"{version}.part"
    staged.write_bytes(version.encode())
    path = models.install(staged, candidate(version))
    os.utime(path.parent, (mtime, mtime))
    return path


def test_promotion_moves_current_and_pruning_spares_current_and_previous(tmp_path: Path) -> None:
    models = ModelsDir(tmp_path, "saiga")
    models.prepare()
    for number in range(1, 6):
        path = installed(models, str(number), 1000.0 + number)
        if number in (1, 2):  # 1 then 2 promoted: 2 is current, 1 the previous
            models.promoted(candidate(str(number)), path)
    assert os.readlink(models.root / "current") == "2"
    assert (models.root / "current" / "saiga.gguf").read_bytes() == b"2"
    assert sorted(models.prune(keep=2)) == ["3"]  # 5, 4 newest; 2 current; 1 previous
    assert sorted(p.name for p in models.root.iterdir() if not p.name.startswith(".")) == \
        ["1", "2", "4", "5", "current", "update.json"]
    assert decide(candidate("2"), models.read()).action == "current"


def test_a_rejection_is_recorded_by_fingerprint(tmp_path: Path) -> None:
    models = ModelsDir(tmp_path, "saiga")
    models.prepare()
    models.rejected(candidate("7"), "cutover rolled back: error rate 40 %")
    assert decide(candidate("7"), models.read()).action == "rejected"
    assert not (models.root / "current").exists()


def test_the_pending_cutover_is_written_step_by_step_and_ends_with_the_outcome(tmp_path: Path) -> None:
    models = ModelsDir(tmp_path, "saiga")
    models.prepare()
    assert models.pending() is None
    models.set_pending(version="7", fingerprint="fp-7", path="/p", canary="green", since=3)
    models.set_pending(model_event=4, before=None)
    assert models.pending() == {"version": "7", "fingerprint": "fp-7", "path": "/p", "canary": "green", "since": 3,
                                "model_event": 4, "before": None}
    models.rejected(candidate("7"), "cutover failed")  # the same write records it and ends the entry
    assert models.pending() is None and decide(candidate("7"), models.read()).action == "rejected"
    models.set_pending(version="8", fingerprint="fp-8", path="/p8", canary="blue", since=9)
    models.promoted(candidate("8"), installed(models, "8", 1000.0))
    assert models.pending() is None and models.read()["current"]["version"] == "8"
    models.set_pending(version="9", fingerprint="fp-9", path="/p9", canary="green", since=12)
    models.clear_pending()
    assert models.pending() is None and not (models.root / "update.tmp").exists()


def test_a_retry_forgets_the_rejection_on_disk_and_a_refusal_leaves_the_record(tmp_path: Path) -> None:
    models = ModelsDir(tmp_path, "saiga")
    models.prepare()
    models.rejected(candidate("7"), "cutover rolled back: error rate 40 %")
    models.rejected(candidate("6"), "canary failed")
    before = models.record_path.read_text()
    with pytest.raises(UpdateFailed, match="saiga 8 is not rejected"):
        models.retry(candidate("8"))
    assert models.record_path.read_text() == before
    assert "saiga 7 was rejected on" in models.retry(candidate("7"))
    assert decide(candidate("7"), models.read()).action == "update"
    assert decide(candidate("6"), models.read()).action == "rejected"


def test_stale_partial_downloads_are_removed_and_the_candidates_is_kept(tmp_path: Path) -> None:
    models = ModelsDir(tmp_path, "saiga")
    models.prepare()
    staging = models.root / ".staging"
    keep = models.staging(candidate("3"))
    keep.write_bytes(b"x" * 10)
    models.staging(candidate("2")).write_bytes(b"x" * 2000)
    (staging / "1-old.gguf.part").write_bytes(b"")
    (staging / ".write-test-1").write_bytes(b"")  # another run's probe: not a download
    assert models.prune_staging(candidate("3")) == [("1-old.gguf.part", 0), ("2-saiga.gguf.part", 2000)]
    assert sorted(path.name for path in staging.iterdir()) == [".write-test-1", keep.name]
    assert keep.read_bytes() == b"x" * 10
    assert models.prune_staging(candidate("3")) == []
    assert ModelsDir(tmp_path, "absent").prune_staging(candidate("3")) == []  # no folder yet


def test_an_unwritable_models_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "models"
    blocker.write_text("a file, not a folder")
    with pytest.raises(UpdateFailed, match="cannot write to the models directory .*Not a directory"):
        ModelsDir(blocker, "saiga").prepare()


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    lock = tmp_path / "update.lock"
    with UpdateLock(lock):
        with pytest.raises(UpdateFailed, match=f"PID {os.getpid()} holds"), UpdateLock(lock):
            pass
    with UpdateLock(lock):  # released on exit
        pass


def test_held_by_names_a_live_holder_only_and_takes_nothing(tmp_path: Path) -> None:
    lock = tmp_path / "update.lock"
    assert held_by(lock) is None and not lock.exists()  # no file: nobody, and none made
    with UpdateLock(lock):
        assert held_by(lock) == str(os.getpid())
    assert held_by(lock) is None
    with UpdateLock(lock):  # looking took nothing
        pass


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / "update.lock"
    code = ("import sys, os; from pathlib import Path; from router.update.lock import UpdateLock\n"
            "UpdateLock(Path(sys.argv[1])).__enter__(); os._exit(0)")  # dies holding it
    subprocess.run([sys.executable, "-c", code, str(lock)], check=True)
    assert lock.read_text().strip().isdigit()
    with UpdateLock(lock):
        assert lock.read_text().strip() == str(os.getpid())


def test_a_local_copy_resumes_and_the_checksum_decides(tmp_path: Path) -> None:
    source = tmp_path / "saiga.gguf"
    source.write_bytes(os.urandom(3_000_000))
    staging = tmp_path / "staged.part"
    staging.write_bytes(source.read_bytes()[:1_000_000])  # an earlier run stopped here
    seen: list[int] = []
    fetched = fetch(candidate("2", str(source), size=3_000_000), staging, lambda done, _: seen.append(done))
    assert fetched.resumed_from == 1_000_000 and fetched.received == 2_000_000 and seen[-1] == 3_000_000
    assert fetched.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    verify(fetched, fetched.sha256)
    with pytest.raises(UpdateRejected, match="checksum mismatch"):
        verify(fetched, "0" * 64)
    assert not staging.exists()


def test_a_local_folder_source(tmp_path: Path) -> None:
    (tmp_path / "saiga-2.gguf").write_bytes(b"GGUF")
    found = check_source(str(tmp_path), "saiga", None)  # type: ignore[arg-type]  # no HTTP for a folder
    assert found.file_name == "saiga-2.gguf" and found.size == 4
    (tmp_path / "saiga-3.gguf").write_bytes(b"GGUF")
    with pytest.raises(UpdateFailed, match="2 .gguf files and no models.json"):
        check_source(str(tmp_path), "saiga", None)  # type: ignore[arg-type]


def test_a_full_disk_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "saiga.gguf"
    source.write_bytes(b"GGUF" * 1000)
    # A write that fails for real: /dev/full answers every write with ENOSPC.
    with pytest.raises(UpdateFailed, match="the disk holding /dev is full"):
        fetch(candidate("2", str(source)), Path("/dev/full"), lambda *_: None)
    # Too little free space is refused before a byte is written (a disk cannot be filled here safely).
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**12, 10**12, 10))  # type: ignore[attr-defined]
    staging = tmp_path / "staged.part"
    with pytest.raises(UpdateFailed, match="not enough space"):
        fetch(candidate("2", str(source), size=4000), staging, lambda *_: None)
    assert not staging.exists()
