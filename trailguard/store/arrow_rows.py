"""Events as an Arrow table in the events table's column layout.

Built where the events are decoded (a decode worker process or the request thread) so the
writer only filters duplicates and inserts; Arrow's IPC format carries it between
processes without copying every value again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from trailguard.events import Event, Scalar
from trailguard.store.schema import (
    ATTRS_COLUMN,
    BASE_COLUMNS,
    EXACT_INTEGER_IN_DOUBLE,
    HOT_BY_ATTRIBUTE,
    HOT_COLUMNS,
)

_ARROW_TYPES = {"VARCHAR": pa.string(), "DOUBLE": pa.float64()}
_HOT_ATTRIBUTES = frozenset(HOT_BY_ATTRIBUTE)
# attribute -> (its place in HOT_COLUMNS, whether the column holds numbers):
# `HotColumn.accepts` inlined, as this loop runs for every attribute of every event.
_HOT_SLOTS = {hot.attribute: (slot, hot.sql_type == "DOUBLE")
              for slot, hot in enumerate(HOT_COLUMNS)}
if {hot.sql_type for hot in HOT_COLUMNS} != {"VARCHAR", "DOUBLE"}:
    raise RuntimeError("events_to_table knows only VARCHAR and DOUBLE hot columns")
DEDUP_KEY_COLUMN = "dedup_key"
# Number columns are DOUBLE: an integer past 2**53 would lose digits there, so it stays in
# `attrs` (as the exact integer) like any value whose type does not fit its column.
_EXACT_IN_DOUBLE = EXACT_INTEGER_IN_DOUBLE
if EXACT_INTEGER_IN_DOUBLE != 2**53:
    raise RuntimeError("_crows.c has 2**53 built in as the largest exact integer")

try:
    # The same rows written in C (setup.py builds it where a compiler is found).
    from trailguard.store import _crows
except ImportError:
    _crows = None
else:
    _crows.configure(tuple(hot.attribute for hot in HOT_COLUMNS),
                     tuple(hot.sql_type == "DOUBLE" for hot in HOT_COLUMNS))

# Whether rows can be written from documents in C (`document_row`).
NATIVE_ROWS = _crows is not None
# (attrs JSON, the hot columns' values in HOT_COLUMNS order with None where absent)
Row = tuple[bytes, tuple[Any, ...]]


@dataclass(slots=True)
class PackedEvent:
    """An event already in the events table's row layout: what `Event` becomes in
    `events_to_table`, built without the flat attributes ever being Python objects
    (see `trailguard.ingest.documents.packed_log_event`)."""

    event_type: str
    timestamp: int
    dedup_key: str | None
    attrs: bytes
    hot: tuple[Any, ...]


def events_to_table(events: Sequence[Event | PackedEvent]) -> pa.Table:
    """Column-wise table of `events`, hot attributes split out of `attrs`."""
    rows = [(event.attrs, event.hot) if type(event) is PackedEvent
            else event_row(event.attributes) for event in events]
    hot_values = list(zip(*(hot for _, hot in rows), strict=True)) if rows \
        else [() for _ in HOT_COLUMNS]

    columns: dict[str, pa.Array] = {
        "event_type": pa.array([e.event_type for e in events], pa.string()),
        "timestamp": pa.array([e.timestamp for e in events], pa.int64()),
        DEDUP_KEY_COLUMN: pa.array([e.dedup_key for e in events], pa.string()),
    }
    for hot, values in zip(HOT_COLUMNS, hot_values, strict=True):
        columns[hot.column] = pa.array(values, _ARROW_TYPES[hot.sql_type])
    columns[ATTRS_COLUMN] = pa.array([attrs for attrs, _ in rows], pa.string())
    if list(columns)[:len(BASE_COLUMNS)] != [name for name, _ in BASE_COLUMNS]:
        raise RuntimeError("events_to_table no longer matches the schema's base columns")
    return pa.table(columns)


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


def table_to_ipc(table: pa.Table) -> bytes:
    """`table` in Arrow's IPC stream format (what a decode worker hands back)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def table_from_ipc(data: bytes) -> pa.Table:
    """The table `table_to_ipc` wrote; its buffers point into `data` (no copy)."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()
