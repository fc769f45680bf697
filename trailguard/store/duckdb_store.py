"""The embedded default store: one DuckDB file in the data directory."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from trailguard.datadir import prepare_data_dir
from trailguard.errors import StoreBusyError, StoreError
from trailguard.events import Event
from trailguard.store.arrow_rows import DEDUP_KEY_COLUMN, events_to_table
from trailguard.store.base import Delivery, QueryResult, WriteResult
from trailguard.store.schema import TABLE, create_statements

log = logging.getLogger(__name__)

DATABASE_FILE = "trailguard.duckdb"


class DuckDBStore:
    """Events in a DuckDB file. Writes are serialised; reads run on their own cursors."""

    dialect = "duckdb"

    def __init__(self, data_dir: Path, read_only: bool = False,
                 memory_limit: str = "") -> None:
        self.path = Path(data_dir) / DATABASE_FILE
        if read_only and not self.path.exists():
            raise StoreError(f"no trailguard data in {data_dir} (expected {self.path.name}); "
                             "ingest or import something first, or pass --data-dir")
        if not read_only:
            prepare_data_dir(self.path.parent)
        try:
            # DuckDB's own default memory limit is 80% of RAM, and its buffer pool keeps
            # written blocks cached up to it: a long-running server should set one.
            settings = {"memory_limit": memory_limit} if memory_limit else {}
            self._connection = duckdb.connect(str(self.path), read_only=read_only,
                                              config=settings)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            # Another process holds the file lock (IOException), or this process has it
            # open with another mode (ConnectionException).
            if "lock" in str(exc).lower() or "different configuration" in str(exc):
                # The command that opened the store adds what to do (cli.py).
                raise StoreBusyError(f"{self.path} is in use by another trailguard process "
                                     "(a running server?)") from exc
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        except duckdb.Error as exc:  # e.g. an invalid store_memory_limit
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        self._write_lock = threading.Lock()
        if not read_only:
            for statement in create_statements():
                self._connection.execute(statement)

    def write(self, events: list[Event], request_id: str | None = None,
              received_ms: int = 0) -> WriteResult:
        """Commit `events` in one transaction; duplicates by request id or content are skipped."""
        return self.write_deliveries([Delivery(events, request_id, received_ms)])[0]

    def write_deliveries(self, deliveries: list[Delivery]) -> list[WriteResult]:
        """Commit every delivery in one transaction (group commit), or none of them.

        Idempotency holds inside the group too: a request key or a content key seen
        twice in `deliveries` is stored once. DuckDB fsyncs its WAL on COMMIT, so once
        this returns the events survive a crash of the process or the machine.
        """
        with self._write_lock:
            connection = self._connection
            try:
                connection.execute("BEGIN TRANSACTION")
                results = self._write_group(deliveries)
                connection.execute("COMMIT")
            except (duckdb.Error, pa.ArrowException, OverflowError, TypeError) as exc:
                # Database failures and values no column can hold (from a bug upstream):
                # nothing of the group is stored, and the caller hears why.
                _rollback(connection)
                raise StoreError(f"cannot write to {self.path}: {exc}") from exc
            except BaseException:
                _rollback(connection)
                raise
        return results

    def expire(self, event_type: str, before_ms: int) -> int:
        """Delete `event_type` events older than `before_ms`, with their content keys.

        Dropping the keys too keeps `dedup_keys` bounded; an expired event delivered
        again is stored again, and expires again at the next run.
        """
        params = {"type": event_type, "before": before_ms}
        where = "event_type = $type AND timestamp < $before"
        with self._write_lock:
            connection = self._connection
            try:
                connection.execute("BEGIN TRANSACTION")
                connection.execute("DELETE FROM dedup_keys WHERE key IN (SELECT dedup_key FROM "
                                   f"{TABLE} WHERE {where} AND dedup_key IS NOT NULL)", params)
                deleted = connection.execute(f"DELETE FROM {TABLE} WHERE {where}",
                                             params).fetchone()
                connection.execute("COMMIT")
            except duckdb.Error as exc:
                _rollback(connection)
                raise StoreError(f"cannot expire events in {self.path}: {exc}") from exc
        return int(deleted[0]) if deleted else 0

    def oldest(self, event_type: str) -> int | None:
        """The timestamp of the oldest `event_type` event, None when there is none."""
        rows = self.read(f"SELECT min(timestamp) FROM {TABLE} WHERE event_type = $type",
                         {"type": event_type}).rows
        return rows[0][0] if rows else None

    def forget_deliveries(self, before_ms: int) -> int:
        """Forget request keys received before `before_ms` (long past any Firehose retry)."""
        with self._write_lock:
            try:
                deleted = self._connection.execute(
                    "DELETE FROM delivery_requests WHERE received_ms < $before",
                    {"before": before_ms}).fetchone()
            except duckdb.Error as exc:
                raise StoreError(f"cannot prune delivery keys in {self.path}: {exc}") from exc
        return int(deleted[0]) if deleted else 0

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

    def _write_group(self, deliveries: list[Delivery]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(deliveries)
        claimed_requests: set[str] = set()
        seen_keys: set[str] = set()
        pending: list[tuple[int, pa.Table, list[str | None], list[bool]]] = []
        for index, delivery in enumerate(deliveries):
            if delivery.request_id is not None and not self._claim_request(
                    delivery, claimed_requests):
                results[index] = WriteResult(0, delivery.size, replayed=True)
                continue
            table = (delivery.table if delivery.table is not None
                     else events_to_table(delivery.events))
            keys = table.column(DEDUP_KEY_COLUMN).to_pylist()
            pending.append((index, table, keys, _first_sightings(keys, seen_keys)))

        claimed = self._claim_dedup_keys([key for _, _, keys, first in pending
                                          for key, new in zip(keys, first, strict=True)
                                          if new and key is not None])
        fresh: list[pa.Table] = []
        for index, table, keys, first in pending:
            keep = [new and (key is None or key in claimed)
                    for key, new in zip(keys, first, strict=True)]
            stored = sum(keep)
            results[index] = WriteResult(stored, len(keys) - stored)
            if stored:
                fresh.append(table if stored == len(keys) else table.filter(pa.array(keep)))
        if fresh:
            self._connection.register("incoming_batch", pa.concat_tables(fresh))
            try:
                self._connection.execute(
                    f"INSERT INTO {TABLE} BY NAME SELECT * FROM incoming_batch")
            finally:
                self._connection.unregister("incoming_batch")
        return [result for result in results if result is not None]

    def _claim_request(self, delivery: Delivery, claimed_in_group: set[str]) -> bool:
        """True when this delivery key was never committed nor claimed earlier in the group."""
        request_id = delivery.request_id
        if request_id is None or request_id in claimed_in_group:
            return False
        claimed_in_group.add(request_id)
        claimed = self._connection.execute(
            "INSERT INTO delivery_requests VALUES ($id, $ms, $n) "
            "ON CONFLICT DO NOTHING RETURNING request_id",
            {"id": request_id, "ms": delivery.received_ms, "n": delivery.size},
        ).fetchall()
        return bool(claimed)

    def _claim_dedup_keys(self, keys: list[str]) -> set[str]:
        """Those of `keys` (content keys) that were not stored before, now claimed."""
        if not keys:
            return set()
        self._connection.register("incoming_keys", pa.table({"key": pa.array(keys, pa.string())}))
        try:
            return {row[0] for row in self._connection.execute(
                "INSERT INTO dedup_keys SELECT key FROM incoming_keys "
                "ON CONFLICT DO NOTHING RETURNING key").fetchall()}
        finally:
            self._connection.unregister("incoming_keys")


def _rollback(connection: duckdb.DuckDBPyConnection) -> None:
    try:
        connection.execute("ROLLBACK")
    except duckdb.Error:
        pass  # no transaction was open (BEGIN itself failed)


def _first_sightings(keys: list[str | None], seen: set[str]) -> list[bool]:
    """Per key, False when it is in `seen` (a repeat inside the group); adds new ones.

    Events without a content key (None) are never repeats.
    """
    first: list[bool] = []
    for key in keys:
        if key is None:
            first.append(True)
        elif key in seen:
            first.append(False)
        else:
            seen.add(key)
            first.append(True)
    return first
