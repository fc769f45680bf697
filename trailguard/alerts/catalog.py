"""The alert catalog: every policy, condition and destination, with a stable id.

Items made through the API live here, in the alerts SQLite file, so they survive
restarts. Items from the alerts file are mirrored here at start (source "file") only
to give them ids; the file stays their truth and the API cannot change them. A name is
unique per kind across both sources (a condition's name here is its key, policy/name).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from trailguard.alerts.definitions import (
    condition_from_json,
    condition_to_json,
    destination_from_json,
    policy_workflow,
)
from trailguard.alerts.incidents import IncidentStore
from trailguard.alerts.model import AlertsConfig, Condition, Destination
from trailguard.errors import AlertConflictError, AlertError, AlertNotFoundError
from trailguard.logs import log_fields

log = logging.getLogger("trailguard.alerts")

KINDS = ("policy", "condition", "destination")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_catalog (
  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, name TEXT NOT NULL,
  source TEXT NOT NULL, definition TEXT NOT NULL, created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL, UNIQUE (kind, name))
"""
_COLUMNS = "id, kind, name, source, definition, created_ms, updated_ms"


@dataclass(frozen=True, slots=True)
class Entry:
    """One catalog row; `definition` is the item's JSON shape."""

    id: int
    kind: str
    name: str
    source: str  # api | file
    definition: dict[str, Any]
    created_ms: int
    updated_ms: int


class Catalog:
    """Reads and writes catalog rows; callers hold `IncidentStore.transaction()`."""

    def __init__(self, incidents: IncidentStore) -> None:
        self.incidents = incidents
        incidents.execute(_SCHEMA)

    def entries(self, kind: str, source: str | None = None) -> list[Entry]:
        sql = f"SELECT {_COLUMNS} FROM alert_catalog WHERE kind = ?"
        params: tuple[Any, ...] = (kind,)
        if source is not None:
            sql, params = sql + " AND source = ?", (kind, source)
        return [_entry(row) for row in self.incidents.execute(sql + " ORDER BY id", params)]

    def get(self, kind: str, entry_id: int) -> Entry:
        rows = self.incidents.execute(f"SELECT {_COLUMNS} FROM alert_catalog "
                                      "WHERE kind = ? AND id = ?", (kind, entry_id))
        if not rows:
            raise AlertNotFoundError(f"no {kind} with id {entry_id}")
        return _entry(rows[0])

    def find(self, kind: str, name: str) -> Entry | None:
        rows = self.incidents.execute(f"SELECT {_COLUMNS} FROM alert_catalog "
                                      "WHERE kind = ? AND name = ?", (kind, name))
        return _entry(rows[0]) if rows else None

    def add(self, kind: str, name: str, definition: dict[str, Any], now_ms: int,
            source: str = "api") -> Entry:
        """Insert an item; `AlertConflictError` when the name is taken."""
        self._check_free(kind, name, None)
        rows = self.incidents.execute(
            "INSERT INTO alert_catalog (kind, name, source, definition, created_ms, "
            f"updated_ms) VALUES (?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}",
            (kind, name, source, _dumps(definition), now_ms, now_ms))
        return _entry(rows[0])

    def replace(self, entry: Entry, name: str, definition: dict[str, Any],
                now_ms: int) -> Entry:
        """Change an API item (its name too); file items are refused."""
        self.check_writable(entry)
        self._check_free(entry.kind, name, entry.id)
        rows = self.incidents.execute(
            "UPDATE alert_catalog SET name = ?, definition = ?, updated_ms = ? WHERE id = ? "
            f"RETURNING {_COLUMNS}", (name, _dumps(definition), now_ms, entry.id))
        return _entry(rows[0])

    def remove(self, entry: Entry) -> None:
        self.check_writable(entry)
        self.incidents.execute("DELETE FROM alert_catalog WHERE id = ?", (entry.id,))

    def check_writable(self, entry: Entry) -> None:
        if entry.source == "file":
            raise AlertConflictError(
                f"{entry.kind} '{entry.name}' (id {entry.id}) comes from the alerts file and "
                "is read-only here: change it in the file and restart the server")

    def sync_file(self, config: AlertsConfig, now_ms: int) -> None:
        """Mirror the alerts file's items, so they get ids; forget ones no longer there."""
        wanted = {"policy": {c.policy: {"name": c.policy} for c in config.conditions},
                  "condition": {c.key: condition_to_json(c) for c in config.conditions},
                  "destination": {d.name: {"name": d.name, "type": d.type, **d.settings}
                                  for d in config.destinations.values()}}
        for kind, items in wanted.items():
            for entry in self.entries(kind, "file"):
                if entry.name not in items:
                    self.incidents.execute("DELETE FROM alert_catalog WHERE id = ?", (entry.id,))
            for name, definition in items.items():
                self._mirror(kind, name, definition, now_ms)

    def merged(self, file_config: AlertsConfig) -> AlertsConfig:
        """The file's configuration plus every API policy, condition and destination."""
        destinations = dict(file_config.destinations)
        for entry in self.entries("destination", "api"):
            destination = _stored_destination(entry)
            if destination is not None:
                destinations[entry.name] = destination
        workflows = list(file_config.workflows)
        for entry in self.entries("policy", "api"):
            workflow = policy_workflow(entry.definition)
            if workflow is not None:
                workflows.append(workflow)
        conditions = list(file_config.conditions)
        for entry in self.entries("condition", "api"):
            condition = _stored_condition(entry)
            if condition is not None:
                conditions.append(condition)
        return dataclasses.replace(file_config, conditions=conditions,
                                   destinations=destinations, workflows=workflows)

    def _mirror(self, kind: str, name: str, definition: dict[str, Any], now_ms: int) -> None:
        existing = self.find(kind, name)
        if existing is None:
            self.add(kind, name, definition, now_ms, source="file")
        elif existing.source == "api":
            raise AlertError(
                f"{kind} '{name}' is in the alerts file and was also made through the API "
                f"(id {existing.id}): delete it through the API or rename it in the file")
        elif existing.definition != definition:
            self.incidents.execute("UPDATE alert_catalog SET definition = ?, updated_ms = ? "
                                   "WHERE id = ?",
                                   (orjson.dumps(definition).decode(), now_ms, existing.id))

    def _check_free(self, kind: str, name: str, own_id: int | None) -> None:
        taken = self.find(kind, name)
        if taken is not None and taken.id != own_id:
            origin = "the alerts file" if taken.source == "file" else "the API"
            raise AlertConflictError(f"a {kind} named '{name}' already exists (id {taken.id}, "
                                     f"from {origin}); choose another name")


def destination_from_definition(definition: dict[str, Any]) -> Destination:
    settings = {key: value for key, value in definition.items() if key not in ("name", "type")}
    return Destination(definition["name"], definition["type"], settings)


def _dumps(definition: dict[str, Any]) -> str:
    try:
        return orjson.dumps(definition).decode()
    except orjson.JSONEncodeError as exc:  # e.g. an integer beyond 64 bits
        raise AlertError(f"the item cannot be stored: {exc}") from None


def _stored_destination(entry: Entry) -> Destination | None:
    """An API destination as delivery uses it; one that breaks today's rules (stored by an
    older version: a variable of another destination, a header break) is not used."""
    try:
        return destination_from_json(entry.definition)
    except AlertError as exc:
        log_fields(log, logging.ERROR, "stored destination skipped", destination=entry.name,
                   id=entry.id, error=str(exc))
        return None


def _stored_condition(entry: Entry) -> Condition | None:
    """An API condition as the evaluator runs it; one that no longer parses is skipped."""
    try:
        return condition_from_json(entry.definition)[1]
    except AlertError as exc:
        log_fields(log, logging.ERROR, "stored condition skipped", condition=entry.name,
                   id=entry.id, error=str(exc))
        return None


def _entry(row: tuple[Any, ...]) -> Entry:
    entry_id, kind, name, source, definition, created_ms, updated_ms = row
    return Entry(entry_id, kind, name, source, orjson.loads(definition), created_ms, updated_ms)
