"""Events as an Arrow table in the events table's column layout.

The writer only filters duplicates and inserts such tables. A decode worker hands back
raw column buffers (`trailguard.store.rows.pack_columns`), which `table_from_columns`
wraps without copying; where the C module is not built, the worker hands back the rows
and the table is built here from Python lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from trailguard.events import Event
from trailguard.store.rows import (
    DEDUP_KEY_COLUMN,
    PackedColumns,
    PackedEvent,
    pack_columns,
    pack_event,
)
from trailguard.store.schema import ATTRS_COLUMN, BASE_COLUMNS, HOT_COLUMNS

_ARROW_TYPES = {"VARCHAR": pa.string(), "DOUBLE": pa.float64()}
# Every column of a table of rows, in order: (name, Arrow type).
_LAYOUT: tuple[tuple[str, pa.DataType], ...] = (
    ("event_type", pa.string()),
    ("timestamp", pa.int64()),
    (DEDUP_KEY_COLUMN, pa.string()),
    *((hot.column, _ARROW_TYPES[hot.sql_type]) for hot in HOT_COLUMNS),
    (ATTRS_COLUMN, pa.string()),
)
if [name for name, _ in _LAYOUT[:len(BASE_COLUMNS)]] != [name for name, _ in BASE_COLUMNS]:
    raise RuntimeError("the row layout no longer matches the schema's base columns")
_SCHEMA = pa.schema(list(_LAYOUT))


def events_to_table(events: Sequence[Event | PackedEvent]) -> pa.Table:
    """Column-wise table of `events`, hot attributes split out of `attrs`."""
    packed = [pack_event(event) for event in events]
    columns = pack_columns(packed)
    if columns is not None:
        return table_from_columns(columns)
    return _table_in_python(packed)


def table_from_chunks(chunks: Sequence[PackedColumns | list[PackedEvent]]) -> pa.Table:
    """One table of a decoded request's chunks of rows (see `decode_rows`): column buffers
    built in C, or rows where the C module is not built."""
    tables = [events_to_table(chunk) if isinstance(chunk, list) else table_from_columns(chunk)
              for chunk in chunks]
    if not tables:
        return events_to_table([])
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def table_from_columns(packed: PackedColumns) -> pa.Table:
    """The table whose column buffers `pack_columns` built; the arrays point into them."""
    count, columns = packed
    if len(columns) != len(_LAYOUT):
        raise ValueError(f"{len(columns)} packed columns; the events table has {len(_LAYOUT)}")
    arrays = []
    for (_, arrow_type), (nulls, validity, offsets, data) in zip(_LAYOUT, columns, strict=True):
        buffers: list[Any] = [None if validity is None else pa.py_buffer(validity)]
        if offsets is not None:
            buffers.append(pa.py_buffer(offsets))
        buffers.append(pa.py_buffer(data))
        arrays.append(pa.Array.from_buffers(arrow_type, count, buffers, null_count=nulls))
    return pa.Table.from_arrays(arrays, schema=_SCHEMA)


def _table_in_python(events: list[PackedEvent]) -> pa.Table:
    """`events_to_table` without the C module: every column from a Python list."""
    hot_values = list(zip(*(event.hot for event in events), strict=True)) if events \
        else [() for _ in HOT_COLUMNS]
    columns = [
        [event.event_type for event in events],
        [event.timestamp for event in events],
        [event.dedup_key for event in events],
        *hot_values,
        [event.attrs for event in events],
    ]
    arrays = [pa.array(values, arrow_type)
              for values, (_, arrow_type) in zip(columns, _LAYOUT, strict=True)]
    return pa.Table.from_arrays(arrays, schema=_SCHEMA)
