"""Events as rows of the events table, and rows as column buffers, without pyarrow.

A decode worker process turns documents into rows (`PackedEvent`) and a whole chunk of
rows into the raw buffers of Arrow columns (`pack_columns`): the server wraps those
buffers as an Arrow table without copying them (`arrow_rows.table_from_columns`). So a
worker never imports pyarrow, which alone takes ~95 MiB of each worker's memory once used.
The C module `_crows` does the work; without it (no compiler at install) the rows are
built here in Python and the columns by pyarrow (`arrow_rows`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from trailguard.events import Scalar
from trailguard.store.schema import EXACT_INTEGER_IN_DOUBLE, HOT_BY_ATTRIBUTE, HOT_COLUMNS

DEDUP_KEY_COLUMN = "dedup_key"
_HOT_ATTRIBUTES = frozenset(HOT_BY_ATTRIBUTE)
# attribute -> (its place in HOT_COLUMNS, whether the column holds numbers):
# `HotColumn.accepts` inlined, as this loop runs for every attribute of every event.
_HOT_SLOTS = {hot.attribute: (slot, hot.sql_type == "DOUBLE")
              for slot, hot in enumerate(HOT_COLUMNS)}
if {hot.sql_type for hot in HOT_COLUMNS} != {"VARCHAR", "DOUBLE"}:
    raise RuntimeError("rows know only VARCHAR and DOUBLE hot columns")
# Number columns are DOUBLE: an integer past 2**53 would lose digits there, so it stays in
# `attrs` (as the exact integer) like any value whose type does not fit its column.
_EXACT_IN_DOUBLE = EXACT_INTEGER_IN_DOUBLE
if EXACT_INTEGER_IN_DOUBLE != 2**53:
    raise RuntimeError("_crows.c has 2**53 built in as the largest exact integer")

try:
    # setup.py builds it where a compiler is found.
    from trailguard.store import _crows
except ImportError:
    _crows = None
else:
    _crows.configure(tuple(hot.attribute for hot in HOT_COLUMNS),
                     tuple(hot.sql_type == "DOUBLE" for hot in HOT_COLUMNS))

# Whether rows and columns are built in C (`document_row`, `pack_columns`).
NATIVE_ROWS = _crows is not None
# (attrs JSON, the hot columns' values in HOT_COLUMNS order with None where absent)
Row = tuple[bytes, tuple[Any, ...]]
# One column's buffers as `pack_columns` gives them: (null count, validity bitmap or None,
# 32-bit offsets or None for numbers, data); see `arrow_rows.table_from_columns`. Bytes,
# or views of a file a worker wrote them to (`trailguard.ingest.handoff`).
ColumnBuffers = tuple[int, bytes | memoryview | None, bytes | memoryview | None,
                      bytes | memoryview]
# (rows, the columns in the events table's order: event_type, timestamp, dedup_key, the
# hot columns, attrs)
PackedColumns = tuple[int, tuple[ColumnBuffers, ...]]


class PackedEvent(NamedTuple):
    """An event already in the events table's row layout: what an `Event` becomes on its
    way to the store (`pack_event`), or what a document becomes directly
    (`trailguard.ingest.documents.packed_log_event`)."""

    event_type: str
    timestamp: int
    dedup_key: str | None
    attrs: bytes
    hot: tuple[Any, ...]


def pack_event(event: Any) -> PackedEvent:
    """`event` (an `Event`, or already a `PackedEvent`) as a `PackedEvent`."""
    if type(event) is PackedEvent:
        return event
    return PackedEvent(event.event_type, event.timestamp, event.dedup_key,
                       *event_row(event.attributes))


def pack_columns(events: list[PackedEvent]) -> PackedColumns | None:
    """The Arrow column buffers of `events`, built in C; None without the C module."""
    if _crows is None:
        return None
    return _crows.pack_columns(events)


def event_row(attributes: dict[str, Scalar]) -> Row:
    """The row of an event's flat attributes: in C where it is built and the attributes
    are plain, else `row_in_python`."""
    row = _crows.flat_row(attributes) if _crows is not None else None
    return row if row is not None else row_in_python(attributes)


def document_row(document: dict[str, Any], limits: tuple[int, int, int],
                 tail: tuple[tuple[str, Scalar], ...],
                 extras: tuple[tuple[str, Scalar], ...]) -> Row | None:
    """The row of a JSON document flattened as `trailguard.ingest.flatten.flatten` does
    within `limits` (depth, attributes, name length), with `tail` added after its own
    attributes where it has none of their name and `extras` under them; None without the
    C module, or for a document it hands back (see _crows.c)."""
    if _crows is None:
        return None
    return _crows.document_row(document, orjson.dumps, *limits, tail, extras)


def row_in_python(attributes: dict[str, Scalar]) -> Row:
    """`event_row` without C: hot attributes into their slots, the rest as JSON."""
    hot_values: list[Any] = [None] * len(HOT_COLUMNS)
    present = _HOT_ATTRIBUTES.intersection(attributes)
    if not present:
        return orjson.dumps(attributes), tuple(hot_values)
    remainder = dict(attributes)
    for attribute in present:
        value = remainder[attribute]
        slot, wants_number = _HOT_SLOTS[attribute]
        kind = type(value)
        if (kind is str) if not wants_number else (
                kind is float or (kind is int and -_EXACT_IN_DOUBLE <= value <= _EXACT_IN_DOUBLE)):
            del remainder[attribute]
            hot_values[slot] = value
    return orjson.dumps(remainder), tuple(hot_values)
