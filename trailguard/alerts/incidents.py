"""Incidents, evaluator state and the notification outbox in one SQLite file of our own.

The file (`<data_dir>/alerts.sqlite`) is separate from the event store, so incidents
can be listed, acknowledged and closed while the server holds the DuckDB file.
A partial unique index keeps one open incident per condition and signal; the outbox
keeps one row per incident, event and destination, so a notification is queued once,
and gives it a random `notification_id` that every retry and replay carries.
Each transition is also kept in `incident_history`, oldest first.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from trailguard.errors import AlertError, AlertNotFoundError

ALERTS_FILE = "alerts.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  condition_key TEXT NOT NULL, policy TEXT NOT NULL, condition_name TEXT NOT NULL,
  signal TEXT NOT NULL, facet TEXT, kind TEXT NOT NULL, priority TEXT NOT NULL,
  state TEXT NOT NULL, opened_ms INTEGER NOT NULL, acknowledged_ms INTEGER,
  closed_ms INTEGER, close_reason TEXT, value REAL, details TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_incident
  ON incidents(condition_key, signal) WHERE state != 'closed';
CREATE TABLE IF NOT EXISTS condition_state (
  condition_key TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT, incident_id INTEGER NOT NULL,
  event TEXT NOT NULL, destination TEXT NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL,
  created_ms INTEGER NOT NULL, sent_ms INTEGER, last_error TEXT, notification_id TEXT,
  UNIQUE (incident_id, event, destination));
CREATE TABLE IF NOT EXISTS incident_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT, incident_id INTEGER NOT NULL, at_ms INTEGER NOT NULL,
  event TEXT NOT NULL, priority TEXT NOT NULL, value REAL, note TEXT);
CREATE INDEX IF NOT EXISTS history_of_incident ON incident_history(incident_id);
"""
_OUTBOX_COLUMNS = ("id, incident_id, event, destination, status, attempts, next_attempt_ms, "
                   "notification_id")

_COLUMNS = ("id", "condition_key", "policy", "condition_name", "signal", "facet", "kind",
            "priority", "state", "opened_ms", "acknowledged_ms", "closed_ms", "close_reason",
            "value", "details")


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident: a condition's signal in violation (or lost) from open to close."""

    id: int
    condition_key: str
    policy: str
    condition_name: str
    signal: str
    facet: Any
    kind: str  # threshold | loss_of_signal
    priority: str
    state: str  # open | acknowledged | closed
    opened_ms: int
    acknowledged_ms: int | None
    closed_ms: int | None
    close_reason: str | None
    value: float | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A notification waiting to be delivered (or delivered, or given up)."""

    id: int
    incident_id: int
    event: str
    destination: str
    status: str
    attempts: int
    next_attempt_ms: int
    notification_id: str


class IncidentStore:
    """Thread-safe access to the alerts SQLite file; `:memory:` for backtests."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30,
                                       isolation_level=None)
            self._db.executescript(_SCHEMA)
            self._add_notification_ids()
        except sqlite3.Error as exc:
            raise AlertError(f"cannot open the incident history {path}: {exc}") from exc
        self._lock = threading.RLock()

    def _add_notification_ids(self) -> None:
        """Files written before notification ids existed get the column and an id per row."""
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(outbox)")]
        if "notification_id" not in columns:
            self._db.execute("ALTER TABLE outbox ADD COLUMN notification_id TEXT")
        missing = self._db.execute("SELECT id FROM outbox WHERE notification_id IS NULL")
        for (row_id,) in missing.fetchall():
            self._db.execute("UPDATE outbox SET notification_id = ? WHERE id = ?",
                             (str(uuid.uuid4()), row_id))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def load_state(self, condition_key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM condition_state WHERE condition_key = ?",
                                   (condition_key,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def save_state(self, condition_key: str, state: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO condition_state VALUES (?, ?)",
                             (condition_key, orjson.dumps(state).decode()))

    def open_incident(self, *, condition_key: str, policy: str, condition_name: str,
                      signal: str, facet: Any, kind: str, priority: str, now_ms: int,
                      value: float | None, details: dict[str, Any]) -> Incident:
        """Insert an open incident; raises `AlertError` if one is open for that signal."""
        try:
            with self._lock:
                cursor = self._db.execute(
                    "INSERT INTO incidents (condition_key, policy, condition_name, signal, facet, "
                    "kind, priority, state, opened_ms, value, details) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)",
                    (condition_key, policy, condition_name, signal, orjson.dumps(facet).decode(),
                     kind, priority, now_ms, value, orjson.dumps(details).decode()))
        except sqlite3.IntegrityError as exc:
            raise AlertError(f"an incident is already open for {condition_key} "
                             f"signal {signal!r}") from exc
        return self.get(int(cursor.lastrowid or 0))

    def get(self, incident_id: int) -> Incident:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM incidents WHERE id = ?",
                                   (incident_id,)).fetchone()
        if row is None:
            raise AlertNotFoundError(f"no incident with id {incident_id}")
        return _incident(row)

    def find_open(self, condition_key: str, signal: str | None = None) -> list[Incident]:
        """Open or acknowledged incidents of a condition (of one signal when given)."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM incidents " \
              "WHERE condition_key = ? AND state != 'closed'"
        params: tuple[Any, ...] = (condition_key,)
        if signal is not None:
            sql, params = sql + " AND signal = ?", (condition_key, signal)
        with self._lock:
            return [_incident(row) for row in self._db.execute(sql + " ORDER BY id", params)]

    def incidents(self, limit: int = 100, states: tuple[str, ...] = ()) -> list[Incident]:
        """The most recent incidents (in one of `states` when given), newest first."""
        where = f"WHERE state IN ({', '.join('?' * len(states))}) " if states else ""
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM incidents {where}"
                                    "ORDER BY id DESC LIMIT ?", (*states, limit)).fetchall()
        return [_incident(row) for row in rows]

    def add_history(self, incident_id: int, event: str, at_ms: int, priority: str,
                    value: float | None, note: str | None = None) -> None:
        """Record one transition of an incident (opened, escalated, acknowledged, closed)."""
        with self._lock:
            self._db.execute("INSERT INTO incident_history (incident_id, at_ms, event, "
                             "priority, value, note) VALUES (?, ?, ?, ?, ?, ?)",
                             (incident_id, at_ms, event, priority, value, note))

    def history(self, incident_id: int) -> list[dict[str, Any]]:
        """The transitions of an incident, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT at_ms, event, priority, value, note FROM "
                                    "incident_history WHERE incident_id = ? ORDER BY id",
                                    (incident_id,)).fetchall()
        return [dict(zip(("at_ms", "event", "priority", "value", "note"), row))
                for row in rows]

    def notifications(self, incident_id: int) -> list[dict[str, Any]]:
        """The outbox rows of an incident: what was (or will be) sent where, and how it went."""
        names = ("notification_id", "event", "destination", "status", "attempts", "sent_ms",
                 "last_error")
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(names)} FROM outbox "
                                    "WHERE incident_id = ? ORDER BY id", (incident_id,))
            return [dict(zip(names, row)) for row in rows.fetchall()]

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one parameterised statement on this file (for the alert catalog's table)."""
        with self._lock:
            cursor = self._db.execute(sql, params)
            return cursor.fetchall()

    def drop_state(self, condition_key: str) -> None:
        """Forget a condition's windows and signals; it starts again from the next window."""
        with self._lock:
            self._db.execute("DELETE FROM condition_state WHERE condition_key = ?",
                             (condition_key,))

    def update(self, incident_id: int, **changes: Any) -> Incident:
        """Set columns of an incident (state, priority, closed_ms, close_reason, ...)."""
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise AlertError(f"unknown incident field(s): {', '.join(sorted(unknown))}")
        assignments = ", ".join(f"{name} = ?" for name in changes)
        with self._lock:
            self._db.execute(f"UPDATE incidents SET {assignments} WHERE id = ?",
                             (*changes.values(), incident_id))
        return self.get(incident_id)

    def enqueue(self, incident_id: int, event: str, destinations: list[str],
                now_ms: int) -> int:
        """Queue `event` for each destination once; returns how many rows were new."""
        added = 0
        with self._lock:
            for destination in destinations:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO outbox (incident_id, event, destination, status, "
                    "next_attempt_ms, created_ms, notification_id) "
                    "VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                    (incident_id, event, destination, now_ms, now_ms, str(uuid.uuid4())))
                added += cursor.rowcount
        return added

    def due(self, now_ms: int, limit: int = 50) -> list[OutboxItem]:
        """Pending notifications whose next attempt time has come, oldest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending' "
                "AND next_attempt_ms <= ? ORDER BY id LIMIT ?", (now_ms, limit)).fetchall()
        return [OutboxItem(*row) for row in rows]

    def outbox(self) -> list[OutboxItem]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY id").fetchall()
        return [OutboxItem(*row) for row in rows]

    def mark_attempt(self, item_id: int, *, status: str, now_ms: int,
                     next_attempt_ms: int | None = None, error: str | None = None) -> None:
        """Record a delivery attempt: `sent`, `pending` (retry later) or `failed`."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?, "
                "next_attempt_ms = COALESCE(?, next_attempt_ms), "
                "sent_ms = CASE WHEN ? = 'sent' THEN ? ELSE sent_ms END WHERE id = ?",
                (status, error, next_attempt_ms, status, now_ms, item_id))


def _incident(row: tuple[Any, ...]) -> Incident:
    values = dict(zip(_COLUMNS, row))
    values["facet"] = orjson.loads(values["facet"]) if values["facet"] else None
    values["details"] = orjson.loads(values["details"])
    return Incident(**values)
