"""Pure decisions of an update: is the source's model new, was it rejected, which versions and partial
downloads to prune, what a retry of a rejected version forgets."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Candidate:
    """What the source offers now. `fingerprint` changes whenever the published file does."""

    name: str
    version: str
    location: str  # the file's URL, or its path for a local source
    file_name: str
    fingerprint: str
    sha256: str | None = None
    size: int | None = None
    validator: str | None = None  # ETag or Last-Modified: a resumed download asks for this same file (If-Range)


class Action(StrEnum):
    update = "update"
    current = "current"
    rejected = "rejected"


@dataclass(frozen=True)
class Decision:
    action: Action
    why: str


def decide(candidate: Candidate, record: dict[str, Any]) -> Decision:
    """Whether to update to `candidate`, given the record of earlier runs (history.Record.data)."""
    current = record.get("current") or {}
    if current.get("fingerprint") == candidate.fingerprint:
        return Decision(Action.current, f"{candidate.name} {candidate.version} is already current")
    rejected = (record.get("rejected") or {}).get(candidate.fingerprint)
    if rejected is not None:
        return Decision(Action.rejected, f"{candidate.name} {candidate.version} was rejected on {rejected.get('date', '?')}"
                                         f" ({rejected.get('reason', 'no reason recorded')}); it is not tried again "
                                         "until the source publishes another file")
    was = f" (current: {current['version']})" if current.get("version") else " (none installed by update yet)"
    return Decision(Action.update, f"{candidate.name} {candidate.version} is new{was}")


@dataclass(frozen=True)
class Retry:
    """The record without the rejection of the version the source offers now (--retry-rejected)."""

    record: dict[str, Any]
    why: str


def retry_rejected(candidate: Candidate, record: dict[str, Any]) -> Retry:
    """Forget `candidate`'s rejection (and nothing else); ValueError saying why when it is not rejected,
    so a --retry-rejected left in a script never updates to a version nobody meant to retry."""
    rejected = dict(record.get("rejected") or {})
    entry = rejected.pop(candidate.fingerprint, None)
    if entry is None:
        now = decide(candidate, record)
        others = sorted({str(item.get("version", "?")) for item in rejected.values()})
        also = f"; rejected earlier: {', '.join(others)} (files the source no longer offers)" if others else ""
        raise ValueError(f"--retry-rejected: {candidate.name} {candidate.version} is not rejected ({now.why}), so "
                         f"there is nothing to retry{also}; run without --retry-rejected")
    why = (f"{candidate.name} {candidate.version} was rejected on {entry.get('date', '?')} "
           f"({entry.get('reason', 'no reason recorded')})")
    return Retry({**record, "rejected": rejected}, why)


def stale_parts(names: list[str], keep: str) -> list[str]:
    """The partial downloads in .staging/ to delete: every `.part` but `keep` (the candidate's, resumed
    by this run). Other files (a concurrent run's write probe) are not ours to delete."""
    return sorted(name for name in names if name.endswith(".part") and name != keep)


def version_of(fingerprint: str, last_modified: str | None = None) -> str:
    """A directory-safe version for a source without one: the file's date when known, and a short hash."""
    short = hashlib.sha256(fingerprint.encode()).hexdigest()[:10]
    if last_modified:
        from email.utils import parsedate_to_datetime

        try:
            return f"{parsedate_to_datetime(last_modified):%Y%m%d-%H%M%S}-{short}"
        except (TypeError, ValueError):
            pass
    return short


def check_version(version: str, what: str = "version") -> str:
    """`version` itself when it can name a folder (a version, or a model's --name)."""
    if not VERSION.match(version):
        raise ValueError(f"{what} {version!r} cannot name a directory: use letters, digits, '.', '_' or '-' "
                         "(64 at most, not starting with a dot)")
    return version


def check_sha256(value: str) -> str:
    lowered = value.strip().lower()
    if not SHA256.match(lowered):
        raise ValueError(f"sha256 must be 64 hex digits, got {value!r}")
    return lowered


def to_prune(versions: list[tuple[str, float]], keep: int, protected: set[str]) -> list[str]:
    """The versions to delete: all but the newest `keep` (by install time), never a protected one
    (the current version and the one the old colour may still be rolled back to)."""
    newest_first = sorted(versions, key=lambda item: item[1], reverse=True)
    kept = {version for version, _ in newest_first[:keep]} | protected
    return [version for version, _ in newest_first if version not in kept]


def space_needed(size: int | None, staged: int, margin: int = 64 << 20) -> int | None:
    """Bytes that must be free before downloading (None: the size is unknown, nothing to check)."""
    return None if size is None else max(0, size - staged) + margin


# -- catching up after a run that was killed mid-cutover ------------------------------------------

MODEL_EVENTS = frozenset({"model_set", "model_reset"})
ENDINGS = {"promoted": "promoted", "rolled_back": "rolled back", "rollout_failed": "failed"}  # event kind → phase words
RUNNING = frozenset({"starting", "warming", "shadowing", "progressing", "promoting", "paused", "rolling_back"})


class Recovery(StrEnum):
    unset = "unset"  # the router never got the candidate: nothing to undo
    restore = "restore"  # the canary got the candidate but no rollout started: give it its model back
    running = "running"  # the rollout that tests the candidate goes on: follow it
    promoted = "promoted"
    rejected = "rejected"


@dataclass(frozen=True)
class CatchUp:
    """What became of the cutover a killed run left pending, read from the router's status and events."""

    action: Recovery
    why: str
    model_event: int | None = None  # the event that set the canary's model to the candidate
    before: dict[str, Any] | None = None  # the canary's model before the candidate (None: its configured one)
    still_candidate: bool = False  # the canary's model is still the candidate (so giving it back is ours to do)
    rollout: str | None = None  # the rollout that tested the candidate
    reason: str = ""  # why it was rejected


def _is_model_event(event: dict[str, Any], colour: str) -> bool:
    return event.get("kind") in MODEL_EVENTS and str(event.get("message", "")).startswith(f"{colour} starts on ")


def _model_of(event: dict[str, Any]) -> str | None:
    after = event.get("after")
    return str(after["model"]) if isinstance(after, dict) and after.get("model") else None


def catch_up(pending: dict[str, Any], status: dict[str, Any], events: list[dict[str, Any]]) -> CatchUp:
    """The fate of `pending` (update.json's entry, written before the canary got the candidate), from the
    router's status and its events after `pending["since"]` (read in that order, so a rollout started in
    between shows in the events). The router's events are the truth: the run may have been killed before
    it wrote down the model event or the rollout id it was answered."""
    canary, path = pending["canary"], pending["path"]
    what = f"{pending.get('version', '?')} ({path}) on {canary}"
    mine = [e for e in events if _is_model_event(e, canary)]
    ours = next((e for e in mine if e.get("kind") == "model_set" and _model_of(e) == path
                 and (pending.get("model_event") in (None, e.get("id")))), None)
    if ours is None:
        return CatchUp(Recovery.unset, f"the router never got {what}: the run stopped before handing it over; "
                                       "nothing to undo")
    later = [e for e in mine if e["id"] > ours["id"]]
    still = not later or _model_of(later[-1]) == path
    base: dict[str, Any] = {"model_event": int(ours["id"]), "before": ours.get("before"), "still_candidate": still}
    starts = [e for e in events if e.get("kind") == "rollout_started" and e["id"] > ours["id"]]
    first = starts[0] if starts else None
    if first is None or (later and later[0]["id"] < first["id"]):  # no rollout ran the candidate
        return CatchUp(Recovery.restore, f"{canary} got {what} but no rollout started (the run stopped "
                                         "in between)", **base)
    following = [e for e in starts[1:] if e["id"] > first["id"]]
    rollout = status.get("rollout") or {}
    known = pending.get("rollout")
    if not following and (known is None or rollout.get("id") == known):  # the router's current rollout is ours
        phase, rollout_id = str(rollout.get("phase", "")), rollout.get("id")
        if phase in RUNNING:
            return CatchUp(Recovery.running, f"rollout {rollout_id} of {what} is still {phase}", rollout=rollout_id,
                           **base)
        if phase == "promoted":
            return CatchUp(Recovery.promoted, f"rollout {rollout_id} promoted {what}", rollout=rollout_id, **base)
        if phase in ("rolled_back", "failed"):
            reason = f"cutover {phase.replace('_', ' ')}: {rollout.get('reason', '')}"
            return CatchUp(Recovery.rejected, f"rollout {rollout_id} of {what} ended {phase.replace('_', ' ')}",
                           rollout=rollout_id, reason=reason, **base)
    end = following[0]["id"] if following else None
    endings = [e for e in events if e.get("kind") in ENDINGS and e["id"] > first["id"] and (end is None or e["id"] < end)]
    if endings and endings[-1]["kind"] == "promoted":
        return CatchUp(Recovery.promoted, f"the rollout of {what} was promoted (event {endings[-1]['id']})",
                       rollout=known, **base)
    if endings:
        last = endings[-1]
        words = ENDINGS[last["kind"]]
        reason = f"cutover {words}: {str(last.get('message', '')).removeprefix('rolled back: ')}"
        return CatchUp(Recovery.rejected, f"the rollout of {what} {words} (event {last['id']})", rollout=known,
                       reason=reason, **base)
    return CatchUp(Recovery.rejected, f"the rollout of {what} ended with no outcome in the router's events",
                   rollout=known, reason="cutover ended with no recorded outcome", **base)
