"""Durable router state in SQLite (WAL): weights, stable colour, rollout record, audit events.

Every change is one transaction that writes the new values and its event together; callers apply
a change only after `commit` returns, so a crash never leaves traffic ahead of the record.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.errors import StateUnavailable
from router.events import Event, EventDraft

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    name    TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      REAL NOT NULL,
    actor   TEXT NOT NULL,
    kind    TEXT NOT NULL,
    message TEXT NOT NULL,
    before  TEXT,
    after   TEXT
);
"""


@dataclass(frozen=True)
class RouterState:
    green_bp: int
    stable: str = "blue"
    rollout: dict[str, Any] | None = field(default=None)
    # A colour's model set through the admin API (`bluegreen update`), over the configured one:
    # {"green": {"model": "/models/saiga/3/saiga.gguf", "engine": "llama_cpp"}}; absent in older files.
    models: dict[str, dict[str, str]] = field(default_factory=dict)


class StateStore:
    """One SQLite file; safe to call from worker threads (one connection behind a lock)."""

    def __init__(self, path: Path, busy_timeout_s: float = 2.0) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateUnavailable(f"cannot open state file {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _settings(self) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in self._db.execute("SELECT key, value FROM settings")}

    def load(self, initial: RouterState) -> RouterState:
        """The saved state; on the very first start, `initial` is saved (with an event) and returned."""
        with self._lock:
            try:
                saved = self._settings()
            except sqlite3.Error as exc:
                raise StateUnavailable(f"cannot read state file {self.path}: {exc}") from exc
        if "green_bp" in saved:
            return RouterState(green_bp=saved["green_bp"], stable=saved.get("stable", "blue"), rollout=saved.get("rollout"),
                               models=saved.get("models") or {})
        values = {"green_bp": initial.green_bp, "stable": initial.stable, "rollout": initial.rollout}
        self.commit(values, EventDraft("router", "initialised", f"new state file; green at {initial.green_bp / 100:g} %",
                                       after=values))
        return initial

    def setting(self, key: str, default: Any = None) -> Any:
        """One saved setting (e.g. `models`), or `default` when it was never written."""
        with self._lock:
            try:
                row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error as exc:
                raise StateUnavailable(f"cannot read state file {self.path}: {exc}") from exc
        return default if row is None else json.loads(row[0])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One immediate (write-locking) transaction; any failure rolls back and is StateUnavailable."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StateUnavailable(f"cannot write state file {self.path}: {exc}") from exc

    def commit(self, values: dict[str, Any], event: EventDraft) -> Event:
        """Write `values` and append `event` in one durable transaction."""
        now = time.time()
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO settings(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                [(key, json.dumps(value)) for key, value in values.items()],
            )
            cursor = db.execute(
                "INSERT INTO events(at, actor, kind, message, before, after) VALUES(?, ?, ?, ?, ?, ?)",
                (now, event.actor, event.kind, event.message, json.dumps(event.before), json.dumps(event.after)),
            )
        return Event(cursor.lastrowid or 0, now, event.actor, event.kind, event.message, event.before, event.after)

    def hold_lease(self, name: str, owner: str, ttl_s: float, now: float | None = None) -> bool:
        """Take or renew lease `name` for `owner`; False while another owner's lease is still valid.
        This keeps a second router process on the same state file (an old one still shutting down,
        say) from driving the same rollout."""
        now = time.time() if now is None else now
        with self._transaction() as db:
            row = db.execute("SELECT owner, expires FROM leases WHERE name = ?", (name,)).fetchone()
            held = row is None or row[0] == owner or row[1] < now
            if held:
                db.execute("INSERT INTO leases(name, owner, expires) VALUES(?, ?, ?) ON CONFLICT(name) "
                           "DO UPDATE SET owner=excluded.owner, expires=excluded.expires", (name, owner, now + ttl_s))
        return held

    def record(self, event: EventDraft) -> Event:
        """Append an event that changes no setting (a probe result, a retry burst)."""
        return self.commit({}, event)

    def events(self, since: int = 0, limit: int = 100) -> list[Event]:
        return self._select("WHERE id > ? ORDER BY id LIMIT ?", (since, limit))

    def latest_events(self, count: int) -> list[Event]:
        """The newest `count` events, oldest first."""
        return list(reversed(self._select("ORDER BY id DESC LIMIT ?", (count,))))

    def _select(self, clause: str, params: tuple[Any, ...]) -> list[Event]:
        with self._lock:
            try:
                rows = self._db.execute(f"SELECT id, at, actor, kind, message, before, after FROM events {clause}",
                                        params).fetchall()
            except sqlite3.Error as exc:
                raise StateUnavailable(f"cannot read state file {self.path}: {exc}") from exc
        return [Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else None, json.loads(r[6]) if r[6] else None)
                for r in rows]
