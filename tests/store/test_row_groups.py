"""Row groups in the store file: group commits are not rewritten by checkpoints, and the
space of events deleted by retention is reclaimed."""

from __future__ import annotations

from trailguard.events import INFRASTRUCTURE_EVENT, LOG, Event
from trailguard.store import DuckDBStore
from trailguard.store.arrow_rows import events_to_table
from trailguard.store.base import Delivery
from trailguard.store.duckdb_store import ROW_GROUP_SIZE

T0 = 1_700_000_000_000
GROUP_ROWS = ROW_GROUP_SIZE + 116  # what 33 requests of 500 records make


def group(first: int, rows: int = GROUP_ROWS, kinds: tuple[str, ...] = (LOG,)) -> Delivery:
    """One delivery of `rows` distinct events, their types taken from `kinds` in turn."""
    events = [Event(kinds[number % len(kinds)], T0 + number, {
        "message": f"event {number} " + "x" * 200, "eventName": f"Name{number % 7}"},
        f"k:{number}") for number in range(first, first + rows)]
    return Delivery([], None, 0, table=events_to_table(events))


def row_groups(store: DuckDBStore) -> list[int]:
    """Rows per row group of the events table, in order."""
    return [row[1] for row in store.read(
        "SELECT row_group_id, max(count) FROM pragma_storage_info('events') "
        "WHERE column_name = 'timestamp' AND segment_type <> 'VALIDITY' "
        "GROUP BY 1 ORDER BY 1", {}).rows]


def checkpoint(store: DuckDBStore) -> None:
    store._connection.execute("CHECKPOINT")  # what DuckDB does by itself past the WAL limit


def test_a_checkpoint_leaves_the_row_groups_of_group_commits_as_written(store):
    for number in range(3):
        store.write_deliveries([group(number * GROUP_ROWS)])
    written = row_groups(store)

    checkpoint(store)

    assert written == [ROW_GROUP_SIZE, 116] * 3
    # Merged, these would have been decompressed and compressed again: seconds per
    # checkpoint on a big store, while no commit can go ahead.
    assert row_groups(store) == written


def test_reclaiming_space_merges_row_groups_that_retention_thinned(store):
    for number in range(3):
        store.write_deliveries([group(number * GROUP_ROWS, kinds=(LOG, LOG, LOG,
                                                                  INFRASTRUCTURE_EVENT))])
    checkpoint(store)
    before = row_groups(store)

    deleted = store.expire(LOG, T0 + 10 * GROUP_ROWS)
    store.reclaim_space()

    after = row_groups(store)
    kept = store.read("SELECT event_type, count(*) FROM events GROUP BY 1", {}).rows
    assert deleted == 3 * GROUP_ROWS * 3 // 4
    assert kept == [(INFRASTRUCTURE_EVENT, 3 * GROUP_ROWS // 4)]
    assert len(after) < len(before)
    assert sum(after) == 3 * GROUP_ROWS // 4
    # Ingest goes on without merging afterwards.
    assert store.read("SELECT current_setting('max_vacuum_tasks')", {}).rows == [(0,)]
