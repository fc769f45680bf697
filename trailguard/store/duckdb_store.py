"""The embedded default store: one DuckDB file in the data directory."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from trailguard.datadir import prepare_data_dir
from trailguard.errors import StoreBusyError, StoreError, StoreUnavailableError
from trailguard.events import UNTIMED_KEY_PREFIX, Event
from trailguard.logs import log_fields
from trailguard.store.arrow_rows import events_to_table
from trailguard.store.base import Delivery, QueryResult, WriteResult
from trailguard.store.rows import DEDUP_KEY_COLUMN
from trailguard.store.schema import (
    DEDUP_COLUMN,
    DEDUP_DIGEST_SQL,
    TABLE,
    create_statements,
    upgrade_statements,
)

log = logging.getLogger(__name__)

DATABASE_FILE = "trailguard.duckdb"
# Acknowledged requests waiting for their group commit (see trailguard.store.spool).
SPOOL_FOLDER = "spool"
# How much WAL DuckDB gathers before it checkpoints (compresses the new rows into the
# database file). Its default, 16 MB, is only ~5,000 events here, and every checkpoint also
# rewrites the table's unfinished row group: writing 300,000 events in 500-event requests
# cost 51 us of CPU per event at 16 MB, 49 at 64 MB, 30 at 256 MB.
CHECKPOINT_THRESHOLD = "256MB"
# Rows per row group in the store file (DuckDB's default is 122,880). A checkpoint
# rewrites the table's last, unfinished row group, so with the default every checkpoint
# recompressed up to 120,000 events again: 500-event requests committed in groups cost
# 33 us of CPU per written event at 1M events stored (and 60 at 10M); with 16,384-row
# groups, 19-20 us, flat from 1M to 3M, and 15% less disk. Scans lose nothing measurable,
# and time filters skip finer ranges.
ROW_GROUP_SIZE = 16_384
# Row groups DuckDB may merge at a checkpoint ("vacuum tasks"). While ingesting: none.
# A group commit of 16,500 rows leaves a full row group and one of 116 rows; DuckDB's
# checkpoint merged such neighbours by decompressing and recompressing them whole, and
# it stalled commits for 12-16 s three times in a 10-million-event run (a checkpoint
# after a few rows took 9 s on that store, 0.01 s without vacuum tasks, which also kept
# the file smaller). Partial row groups cost scans nothing measurable. Rows deleted by
# retention are reclaimed in `reclaim_space`, a few groups at a time.
INGEST_VACUUM_TASKS = 0
RECLAIM_VACUUM_TASKS = 20
# Spill files of queries past the memory limit, inside the data directory.
TEMP_FOLDER = "tmp"
# The name the store file is attached under; every cursor selects it (`_cursor`).
CATALOG = "store"
# How far apart in time two copies of one event may be stored and still be recognised:
# copies of a record share its time, but a CloudTrail record read from CloudWatch Logs
# carries the delivery's time, and a finding's EventBridge time can differ from its
# updatedAt by seconds.
DEDUP_WINDOW_MS = 24 * 3_600_000
MAX_TIME_CLUSTERS = 8
# Rows copied into one contiguous table per INSERT statement of a group: a row group's
# worth. DuckDB writes each big INSERT's rows out on its own (before COMMIT), so smaller
# statements leave partial row groups to rewrite: inserting 16,384 rows as four 4,096-row
# statements took 10.5-11.5 us of CPU per event, as one 7.7 (200k real rows, measured).
# The copy holds ~60 MB at once (~3.5 KB of Arrow per event).
INSERT_RUN_ROWS = ROW_GROUP_SIZE

# What makes two events the same: their event type and content key.
Identity = tuple[str, str]


class DuckDBStore:
    """Events in a DuckDB file. Writes are serialised; reads run on their own cursors."""

    dialect = "duckdb"

    def __init__(self, data_dir: Path, read_only: bool = False,
                 memory_limit: str = "") -> None:
        self.path = Path(data_dir) / DATABASE_FILE
        self.spool_dir = Path(data_dir) / SPOOL_FOLDER
        if read_only and not self.path.exists():
            raise StoreError(f"no trailguard data in {data_dir} (expected {self.path.name}); "
                             "ingest or import something first, or pass --data-dir")
        if not read_only:
            prepare_data_dir(self.path.parent)
        try:
            self._connection = _open(self.path, read_only, memory_limit)
        except (duckdb.IOException, duckdb.ConnectionException,
                duckdb.ResourceInUseException) as exc:
            # Another process holds the file lock (IOException), or this process has it
            # open already (ResourceInUseException).
            if "lock" in str(exc).lower() or isinstance(exc, duckdb.ResourceInUseException):
                # The command that opened the store adds what to do (cli.py).
                raise StoreBusyError(f"{self.path} is in use by another trailguard process "
                                     "(a running server?)") from exc
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        except duckdb.Error as exc:  # e.g. an invalid store_memory_limit
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        self._write_lock = threading.Lock()
        self._read_barrier: Callable[[], None] | None = None
        if not read_only:
            self._prepare_schema()

    def _prepare_schema(self) -> None:
        """Create the tables, or bring a store written by an earlier version up to date."""
        connection = self._connection
        for statement in create_statements():
            connection.execute(statement)
        columns = {row[0] for row in connection.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = $table",
            {"table": TABLE}).fetchall()}
        steps = upgrade_statements(columns)
        if not steps:
            return
        log.info("upgrading the store's de-duplication keys to digests (once; may take "
                 "a while on a big store)")
        try:
            connection.execute("BEGIN TRANSACTION")
            for statement in steps:
                connection.execute(statement)
            connection.execute("COMMIT")
        except duckdb.Error as exc:
            _rollback(connection)
            raise StoreError(f"cannot upgrade {self.path}: {exc}") from exc

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
            phases = _Phases()
            try:
                _begin(connection)
                results = self._write_group(deliveries, phases)
                connection.execute("COMMIT")
            except (duckdb.Error, pa.ArrowException, OverflowError, TypeError) as exc:
                # Database failures and values no column can hold (from a bug upstream):
                # nothing of the group is stored, and the caller hears why.
                _rollback(connection)
                error = (StoreUnavailableError if _store_wide_failure(exc) else StoreError)
                raise error(f"cannot write to {self.path}: {exc}") from exc
            except BaseException:
                _rollback(connection)
                raise
            phases.mark("commit_ms")
        if log.isEnabledFor(logging.DEBUG):
            log_fields(log, logging.DEBUG, "group written", deliveries=len(deliveries),
                       events=sum(result.stored for result in results), **phases.spent)
        return results

    def expire(self, event_type: str, before_ms: int) -> int:
        """Delete `event_type` events older than `before_ms`.

        Content keys live in the events' own rows, so they go with them: an expired
        event delivered again is stored again, and expires again at the next run.
        """
        params = {"type": event_type, "before": before_ms}
        with self._write_lock:
            try:
                deleted = self._connection.execute(
                    f"DELETE FROM {TABLE} WHERE event_type = $type AND timestamp < $before",
                    params).fetchone()
            except duckdb.Error as exc:
                raise StoreError(f"cannot expire events in {self.path}: {exc}") from exc
        return int(deleted[0]) if deleted else 0

    def reclaim_space(self) -> None:
        """Checkpoint with row-group merging allowed, so the space of rows deleted since
        the last checkpoint is reused: at most RECLAIM_VACUUM_TASKS merges, each holding
        up commits for ~0.1 s (the rest is merged at later passes). Deletes an automatic
        checkpoint wrote already are merged only by a later pass that deletes more.
        """
        with self._write_lock:
            connection = self._connection
            try:
                connection.execute(f"SET max_vacuum_tasks = {RECLAIM_VACUUM_TASKS}")
                connection.execute("CHECKPOINT")
            except duckdb.Error as exc:
                # A reader's open transaction can hold off a checkpoint; DuckDB checkpoints
                # again later anyway, and the next retention pass retries the merging.
                log_fields(log, logging.WARNING, "cannot reclaim deleted rows' space now",
                           reason=str(exc))
            finally:
                try:
                    connection.execute(f"SET max_vacuum_tasks = {INGEST_VACUUM_TASKS}")
                except duckdb.Error as exc:  # checkpoints may merge until the next try
                    log_fields(log, logging.ERROR, "cannot turn row-group merging off "
                               "again", reason=str(exc))

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
        """Run a read statement on a cursor of its own (safe beside writes), once the
        deliveries already acknowledged are committed (see `set_read_barrier`)."""
        if self._read_barrier is not None:
            self._read_barrier()
        cursor = self._connection.cursor()
        cursor.execute(f"USE {CATALOG}")  # a new cursor starts in the in-memory catalog
        try:
            relation = cursor.execute(sql, params)
            columns = [column[0] for column in relation.description or []]
            return QueryResult(columns, relation.fetchall())
        finally:
            cursor.close()

    def set_read_barrier(self, barrier: Callable[[], None]) -> None:
        """Call `barrier` before every read: a writer that acknowledges deliveries before
        committing them (see `trailguard.store.writer`) commits them there, so a query
        sees every acknowledged event."""
        self._read_barrier = barrier

    def close(self) -> None:
        with self._write_lock:
            self._connection.close()

    def _write_group(self, deliveries: list[Delivery], phases: _Phases) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(deliveries)
        new_requests = self._claim_requests(deliveries)
        phases.mark("claim_ms")
        seen: set[Identity] = set()
        pending: list[tuple[int, pa.Table, list[Identity | None], list[bool]]] = []
        for index, delivery in enumerate(deliveries):
            if delivery.request_id is not None and index not in new_requests:
                results[index] = WriteResult(0, delivery.size, replayed=True)
                continue
            table = (delivery.table if delivery.table is not None
                     else events_to_table(delivery.events))
            identities = _identities(table)
            pending.append((index, table, identities, _first_sightings(identities, seen)))

        looked_up: dict[Identity, int] = {}  # new identity -> its event's timestamp
        for _, table, identities, first in pending:
            times = table.column("timestamp").to_pylist()
            looked_up.update((identity, time) for identity, new, time
                             in zip(identities, first, times, strict=True)
                             if new and identity is not None)
        phases.mark("keys_ms")
        stored_before = self._stored_keys(looked_up)
        phases.mark("lookup_ms")
        fresh: list[pa.Table] = []
        for index, table, identities, first in pending:
            keep = [new and (identity is None or identity not in stored_before)
                    for identity, new in zip(identities, first, strict=True)]
            stored = sum(keep)
            results[index] = WriteResult(stored, len(identities) - stored)
            if stored:
                fresh.append(table if stored == len(identities)
                             else table.filter(pa.array(keep)))
        # Contiguous runs of rows: DuckDB appends them in full 2,048-row vectors, where the
        # requests' own 500-row tables cost twice the CPU per event (measured). One run at
        # a time, so the copy never holds much more than INSERT_RUN_ROWS rows at once
        # however big the group (a spooled batch is 16,384 rows or more).
        for run in _runs(fresh, INSERT_RUN_ROWS):
            self._insert(pa.concat_tables(run).combine_chunks())
        phases.mark("insert_ms")
        return [result for result in results if result is not None]

    def _claim_requests(self, deliveries: list[Delivery]) -> set[int]:
        """Positions of the deliveries whose key was never committed, now claimed.

        A key seen twice in the group is claimed by its first delivery only. Two
        statements for the whole group (a statement per request cost ~1 ms each): which
        keys are committed already, then the others inserted. The caller holds the write
        lock, so nothing can claim a key in between. `INSERT ... ON CONFLICT DO NOTHING
        RETURNING` does both in one statement but cost 10.8 ms per 33 keys against 2.3.
        """
        first_by_key: dict[str, int] = {}
        for index, delivery in enumerate(deliveries):
            if delivery.request_id is not None:
                first_by_key.setdefault(delivery.request_id, index)
        if not first_by_key:
            return set()
        committed = {row[0] for row in self._connection.execute(
            "SELECT request_id FROM delivery_requests WHERE list_contains($keys, request_id)",
            {"keys": list(first_by_key)}).fetchall()}
        claimed = {key: index for key, index in first_by_key.items() if key not in committed}
        if claimed:
            claims = pa.table({
                "request_id": pa.array(list(claimed), pa.string()),
                "received_ms": pa.array([deliveries[i].received_ms for i in claimed.values()],
                                        pa.int64()),
                "events": pa.array([deliveries[i].size for i in claimed.values()], pa.int32()),
            })
            with _registered(self._connection, "incoming_requests", claims):
                self._connection.execute(
                    "INSERT INTO delivery_requests SELECT * FROM incoming_requests")
        return set(claimed.values())

    def _stored_keys(self, times: dict[Identity, int]) -> set[Identity]:
        """Those of the (event type, content key) identities already stored.

        A copy of an event has the event's time (see `trailguard.events.content_key`), so
        a key is looked for only among events within DEDUP_WINDOW_MS of its time: DuckDB
        then reads just the row groups whose timestamps reach that range, and the cost
        follows the events of those days, not the size of the store. Keys of events
        without a time of their own are looked for at any time. The same record stored as
        another event type (a CloudTrail record as a `Log` from Firehose and as an
        `InfrastructureEvent` from a trail file) is a different event.
        """
        untimed = [identity for identity in times
                   if identity[1].startswith(UNTIMED_KEY_PREFIX)]
        found = self._find(untimed, None) if untimed else set()
        timed = sorted((moment, identity) for identity, moment in times.items()
                       if not identity[1].startswith(UNTIMED_KEY_PREFIX))
        for first, last in _time_clusters([moment for moment, _ in timed]):
            cluster = [identity for _, identity in timed[first:last]]
            found |= self._find(cluster, (timed[first][0] - DEDUP_WINDOW_MS,
                                          timed[last - 1][0] + DEDUP_WINDOW_MS))
        return found

    def _find(self, identities: list[Identity],
              between: tuple[int, int] | None) -> set[Identity]:
        """Those of `identities` stored (with a timestamp in `between`, when given): one
        scan of the digest column, joined against the incoming keys (the small side of
        the join is the one DuckDB builds its hash table from)."""
        digest = DEDUP_DIGEST_SQL.format(key="incoming.key")
        where = "WHERE stored.timestamp BETWEEN $low AND $high" if between else ""
        params = {"low": between[0], "high": between[1]} if between else {}
        incoming = pa.table({"event_type": pa.array([i[0] for i in identities], pa.string()),
                             "key": pa.array([i[1] for i in identities], pa.string())})
        with _registered(self._connection, "incoming_keys", incoming):
            return {(row[0], row[1]) for row in self._connection.execute(
                f"SELECT DISTINCT incoming.event_type, incoming.key "
                f"FROM incoming_keys AS incoming JOIN {TABLE} AS stored "
                f"ON stored.{DEDUP_COLUMN} = {digest} "
                f"AND stored.event_type = incoming.event_type {where}", params).fetchall()}

    def _insert(self, table: pa.Table) -> None:
        digest = DEDUP_DIGEST_SQL.format(key=DEDUP_KEY_COLUMN)
        with _registered(self._connection, "incoming_batch", table):
            self._connection.execute(
                f"INSERT INTO {TABLE} BY NAME SELECT * EXCLUDE ({DEDUP_KEY_COLUMN}), "
                f"{digest} AS {DEDUP_COLUMN} FROM incoming_batch")


class _Phases:
    """Milliseconds spent in each step of a group's write, for the debug log: where a
    slow commit spends its time."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._since = time.perf_counter()

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.spent[phase] = round((now - self._since) * 1000, 1)
        self._since = now


def _open(path: Path, read_only: bool, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """A connection whose default catalog is the store file, attached with ROW_GROUP_SIZE.

    The row group size is an ATTACH option only, hence an in-memory instance that
    attaches the file rather than `duckdb.connect(path)`.
    """
    # DuckDB's own default memory limit is 80% of RAM, and its buffer pool keeps
    # written blocks cached up to it: a long-running server should set one.
    settings = {"memory_limit": memory_limit} if memory_limit else {}
    settings["checkpoint_threshold"] = CHECKPOINT_THRESHOLD
    settings["max_vacuum_tasks"] = INGEST_VACUUM_TASKS
    # Where a query past the memory limit spills: in the data directory. An in-memory
    # instance (as here) would otherwise use ".tmp" in whatever folder the server runs in.
    settings["temp_directory"] = str(path.parent / TEMP_FOLDER)
    connection = duckdb.connect(":memory:", config=settings)
    options = "READ_ONLY" if read_only else f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}"
    try:
        connection.execute(f"ATTACH $path AS {CATALOG} ({options})", {"path": str(path)})
        connection.execute(f"USE {CATALOG}")
    except BaseException:
        connection.close()
        raise
    return connection


# Failures of the disk under the store, not of what was written.
_STORE_WIDE_MESSAGES = ("no space left", "file too large", "disk full", "disk quota",
                        "input/output error", "read-only file system")


def _store_wide_failure(exc: BaseException) -> bool:
    """Whether `exc` says the store cannot write at all (rather than refusing one write)."""
    if isinstance(exc, duckdb.IOException | duckdb.FatalException):
        return True
    message = str(exc).lower()
    return any(words in message for words in _STORE_WIDE_MESSAGES)


@contextmanager
def _registered(connection: duckdb.DuckDBPyConnection, name: str,
                table: pa.Table) -> Iterator[None]:
    """`table` visible to SQL as `name` for the block.

    When a statement of the block fails, DuckDB aborts the transaction, and unregistering
    then fails too ("Current transaction is aborted"); raised from a `finally`, that
    error replaced the real one, so a full disk read as a failure of the deliveries
    themselves. The block's own error is the one raised.
    """
    connection.register(name, table)
    try:
        yield
    except BaseException:
        try:
            connection.unregister(name)
        except duckdb.Error:
            pass  # the next register of `name` replaces it
        raise
    connection.unregister(name)


def _begin(connection: duckdb.DuckDBPyConnection) -> None:
    """BEGIN, after rolling back a transaction a failed write left aborted (a failed
    COMMIT can leave one, and every later BEGIN then fails with "transaction is
    aborted" instead of the real cause)."""
    try:
        connection.execute("BEGIN TRANSACTION")
    except duckdb.TransactionException:
        _rollback(connection)
        connection.execute("BEGIN TRANSACTION")


def _rollback(connection: duckdb.DuckDBPyConnection) -> None:
    try:
        connection.execute("ROLLBACK")
    except duckdb.Error:
        pass  # no transaction was open (BEGIN itself failed)


def _runs(tables: list[pa.Table], rows: int) -> list[list[pa.Table]]:
    """`tables` in consecutive runs of at least `rows` rows (the last may hold fewer)."""
    runs: list[list[pa.Table]] = []
    current: list[pa.Table] = []
    counted = 0
    for table in tables:
        current.append(table)
        counted += table.num_rows
        if counted >= rows:
            runs.append(current)
            current, counted = [], 0
    if current:
        runs.append(current)
    return runs


def _time_clusters(times: list[int]) -> list[tuple[int, int]]:
    """Index ranges [first, last) of sorted `times` split where two neighbours are more
    than DEDUP_WINDOW_MS apart, so events of 2019 and of today in one group do not make
    one lookup read every year between. At most MAX_TIME_CLUSTERS ranges: past that,
    the widest gaps split and the rest stay together."""
    if not times:
        return []
    gaps = sorted((times[i] - times[i - 1], i) for i in range(1, len(times))
                  if times[i] - times[i - 1] > DEDUP_WINDOW_MS)
    cuts = sorted(index for _, index in gaps[-(MAX_TIME_CLUSTERS - 1):]) if gaps else []
    bounds = [0, *cuts, len(times)]
    return list(pairwise(bounds))


def _identities(table: pa.Table) -> list[Identity | None]:
    """Per row, (event type, content key), or None for an event without a content key."""
    types = table.column("event_type").to_pylist()
    keys = table.column(DEDUP_KEY_COLUMN).to_pylist()
    return [None if key is None else (event_type, key)
            for event_type, key in zip(types, keys, strict=True)]


def _first_sightings(identities: list[Identity | None], seen: set[Identity]) -> list[bool]:
    """Per row, False when its identity is in `seen` (a repeat inside the group); adds
    new ones. Events without a content key (None) are never repeats.
    """
    first: list[bool] = []
    for identity in identities:
        if identity is None:
            first.append(True)
        elif identity in seen:
            first.append(False)
        else:
            seen.add(identity)
            first.append(True)
    return first
