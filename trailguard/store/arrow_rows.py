"""Events as an Arrow table in the events table's column layout.

Built where the events are decoded (a decode worker process or the request thread) so the
writer only filters duplicates and inserts; Arrow's IPC format carries it between
processes without copying every value again.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

from trailguard.events import Event
from trailguard.store.schema import (
    ATTRS_COLUMN,
    BASE_COLUMNS,
    EXACT_INTEGER_IN_DOUBLE,
    HOT_BY_ATTRIBUTE,
    HOT_COLUMNS,
)

_ARROW_TYPES = {"VARCHAR": pa.string(), "DOUBLE": pa.float64()}
_HOT_ATTRIBUTES = frozenset(HOT_BY_ATTRIBUTE)
# attribute -> (column, whether the column holds numbers): `HotColumn.accepts` inlined,
# as this loop runs for every attribute of every event.
_HOT_SLOTS = {hot.attribute: (hot.column, hot.sql_type == "DOUBLE") for hot in HOT_COLUMNS}
if {hot.sql_type for hot in HOT_COLUMNS} != {"VARCHAR", "DOUBLE"}:
    raise RuntimeError("events_to_table knows only VARCHAR and DOUBLE hot columns")
DEDUP_KEY_COLUMN = "dedup_key"
# Number columns are DOUBLE: an integer past 2**53 would lose digits there, so it stays in
# `attrs` (as the exact integer) like any value whose type does not fit its column.
_EXACT_IN_DOUBLE = EXACT_INTEGER_IN_DOUBLE
if EXACT_INTEGER_IN_DOUBLE != 2**53:
    raise RuntimeError("_csplit.c has 2**53 built in as the largest exact integer")

try:
    # The same split in C (setup.py builds it where a compiler is found).
    from trailguard.store._csplit import split_hot as _split_hot
except ImportError:
    _split_hot = None


def events_to_table(events: list[Event]) -> pa.Table:
    """Column-wise table of `events`, hot attributes split out of `attrs`."""
    hot_values: dict[str, list[Any]] = {hot.column: [None] * len(events) for hot in HOT_COLUMNS}
    if _split_hot is not None:
        slots = {hot.attribute: (hot_values[hot.column], hot.sql_type == "DOUBLE")
                 for hot in HOT_COLUMNS}
        remainders = [orjson.dumps(_split_hot(event.attributes, slots, row))
                      for row, event in enumerate(events)]
    else:
        remainders = _split_in_python(events, hot_values)

    columns: dict[str, pa.Array] = {
        "event_type": pa.array([e.event_type for e in events], pa.string()),
        "timestamp": pa.array([e.timestamp for e in events], pa.int64()),
        DEDUP_KEY_COLUMN: pa.array([e.dedup_key for e in events], pa.string()),
    }
    for hot in HOT_COLUMNS:
        columns[hot.column] = pa.array(hot_values[hot.column], _ARROW_TYPES[hot.sql_type])
    columns[ATTRS_COLUMN] = pa.array(remainders, pa.string())
    if list(columns)[:len(BASE_COLUMNS)] != [name for name, _ in BASE_COLUMNS]:
        raise RuntimeError("events_to_table no longer matches the schema's base columns")
    return pa.table(columns)


def _split_in_python(events: list[Event], hot_values: dict[str, list[Any]]) -> list[bytes]:
    """What `_split_hot` does, for every event (where the C module is not built): hot
    attributes into `hot_values`, the rest of each event as JSON."""
    remainders: list[bytes] = []
    for row, event in enumerate(events):
        attributes = event.attributes
        present = _HOT_ATTRIBUTES.intersection(attributes)
        if not present:
            remainders.append(orjson.dumps(attributes))
            continue
        remainder = dict(attributes)
        for attribute in present:
            value = remainder[attribute]
            column, wants_number = _HOT_SLOTS[attribute]
            kind = type(value)
            if (kind is str) if not wants_number else (
                    kind is float or (kind is int and -_EXACT_IN_DOUBLE <= value <= _EXACT_IN_DOUBLE)):
                del remainder[attribute]
                hot_values[column][row] = value
        remainders.append(orjson.dumps(remainder))
    return remainders


def table_to_ipc(table: pa.Table) -> bytes:
    """`table` in Arrow's IPC stream format (what a decode worker hands back)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def table_from_ipc(data: bytes) -> pa.Table:
    """The table `table_to_ipc` wrote; its buffers point into `data` (no copy)."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()
