"""The embedded default store: one DuckDB file in the data directory."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from trailguard.errors import StoreBusyError, StoreError
from trailguard.events import Event
from trailguard.store.base import QueryResult, WriteResult
from trailguard.store.schema import (
    ATTRS_COLUMN,
    BASE_COLUMNS,
    HOT_COLUMNS,
    TABLE,
    create_statements,
)

log = logging.getLogger(__name__)

DATABASE_FILE = "trailguard.duckdb"

_ARROW_TYPES = {"VARCHAR": pa.string(), "DOUBLE": pa.float64()}


class DuckDBStore:
    """Events in a DuckDB file. Writes are serialised; reads run on their own cursors."""

    dialect = "duckdb"

    def __init__(self, data_dir: Path, read_only: bool = False) -> None:
        self.path = Path(data_dir) / DATABASE_FILE
        if read_only and not self.path.exists():
            raise StoreError(f"no trailguard data in {data_dir} (expected {self.path.name}); "
                             "ingest or import something first, or pass --data-dir")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connection = duckdb.connect(str(self.path), read_only=read_only)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            # Another process holds the file lock (IOException), or this process has it
            # open with another mode (ConnectionException).
            if "lock" in str(exc).lower() or "different configuration" in str(exc):
                raise StoreBusyError(
                    f"{self.path} is in use by another trailguard process (a running server?); "
                    "query that server with --url instead") from exc
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        self._write_lock = threading.Lock()
        if not read_only:
            for statement in create_statements():
                self._connection.execute(statement)

    def write(self, events: list[Event], request_id: str | None = None,
              received_ms: int = 0) -> WriteResult:
        """Commit `events` in one transaction; duplicates by request id or content are skipped."""
        unique, duplicates = _drop_batch_duplicates(events)
        with self._write_lock:
            connection = self._connection
            connection.execute("BEGIN TRANSACTION")
            try:
                if request_id is not None and not self._claim_request(
                        request_id, received_ms, len(events)):
                    connection.execute("ROLLBACK")
                    return WriteResult(0, len(events), replayed=True)
                fresh = self._claim_dedup_keys(unique)
                if fresh:
                    batch = _arrow_batch(fresh)
                    connection.register("incoming_batch", batch)
                    connection.execute(f"INSERT INTO {TABLE} BY NAME SELECT * FROM incoming_batch")
                    connection.unregister("incoming_batch")
                connection.execute("COMMIT")
            except Exception:
                connection.execute("ROLLBACK")
                raise
        return WriteResult(len(fresh), duplicates + len(unique) - len(fresh))

    def read(self, sql: str, params: dict[str, Any]) -> QueryResult:
        """Run a read statement on a cursor of its own (safe beside writes)."""
        cursor = self._connection.cursor()
        try:
            relation = cursor.execute(sql, params)
            columns = [column[0] for column in relation.description or []]
            return QueryResult(columns, relation.fetchall())
        finally:
            cursor.close()

    def close(self) -> None:
        with self._write_lock:
            self._connection.close()

    def _claim_request(self, request_id: str, received_ms: int, count: int) -> bool:
        claimed = self._connection.execute(
            "INSERT INTO delivery_requests VALUES ($id, $ms, $n) "
            "ON CONFLICT DO NOTHING RETURNING request_id",
            {"id": request_id, "ms": received_ms, "n": count},
        ).fetchall()
        return bool(claimed)

    def _claim_dedup_keys(self, events: list[Event]) -> list[Event]:
        """The events whose content key was not stored before (keyless events always pass)."""
        keys = [event.dedup_key for event in events if event.dedup_key is not None]
        if not keys:
            return events
        self._connection.register("incoming_keys", pa.table({"key": pa.array(keys, pa.string())}))
        try:
            claimed = {row[0] for row in self._connection.execute(
                "INSERT INTO dedup_keys SELECT key FROM incoming_keys "
                "ON CONFLICT DO NOTHING RETURNING key").fetchall()}
        finally:
            self._connection.unregister("incoming_keys")
        return [event for event in events if event.dedup_key is None or event.dedup_key in claimed]


def _drop_batch_duplicates(events: list[Event]) -> tuple[list[Event], int]:
    seen: set[str] = set()
    unique: list[Event] = []
    for event in events:
        if event.dedup_key is not None:
            if event.dedup_key in seen:
                continue
            seen.add(event.dedup_key)
        unique.append(event)
    return unique, len(events) - len(unique)


def _arrow_batch(events: list[Event]) -> pa.Table:
    """Column-wise arrow table of `events`, hot attributes split out of `attrs`."""
    hot_values: dict[str, list[Any]] = {hot.column: [] for hot in HOT_COLUMNS}
    remainders: list[str] = []
    for event in events:
        remainder = dict(event.attributes)
        for hot in HOT_COLUMNS:
            value = remainder.get(hot.attribute)
            if value is not None and hot.accepts(value):
                del remainder[hot.attribute]
                hot_values[hot.column].append(value)
            else:
                hot_values[hot.column].append(None)
        remainders.append(orjson.dumps(remainder).decode())

    columns: dict[str, pa.Array] = {
        "event_type": pa.array([e.event_type for e in events], pa.string()),
        "timestamp": pa.array([e.timestamp for e in events], pa.int64()),
        "dedup_key": pa.array([e.dedup_key for e in events], pa.string()),
    }
    for hot in HOT_COLUMNS:
        columns[hot.column] = pa.array(hot_values[hot.column], _ARROW_TYPES[hot.sql_type])
    columns[ATTRS_COLUMN] = pa.array(remainders, pa.string())
    assert list(columns)[:len(BASE_COLUMNS)] == [name for name, _ in BASE_COLUMNS]
    return pa.table(columns)
