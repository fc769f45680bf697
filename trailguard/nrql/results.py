"""Rows from the store -> the NRQL result JSON New Relic's NerdGraph returns.

Row layout of an aggregate statement: [comparison] [facet...] [bucket] [value...]
[rank]; each part present only when the query has it (see `shapes.py`).
TIMESERIES results get a row for every bucket, empty ones filled (0 for counts
and sums, null otherwise), as New Relic's charts show them.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import orjson

from trailguard.errors import NrqlError
from trailguard.nrql.attributes import Decode
from trailguard.nrql.plan import OutputColumn, Plan
from trailguard.store.base import QueryResult
from trailguard.store.schema import ATTRS_COLUMN, HOT_COLUMNS

Group = tuple[Any, ...]
# Rows a faceted TIMESERIES may fill in (facets x buckets): every bucket of every facet
# becomes a row, so LIMIT MAX (5,000 facets) over 366 buckets would be 1.8 million rows,
# ~330 MB of JSON built in memory. 200,000 is 500 facets of 366 buckets.
MAX_SERIES_ROWS = 200_000


def build_results(plan: Plan, result: QueryResult) -> dict[str, Any]:
    """`{"results": [...], "metadata": {...}}` for the rows of a compiled query."""
    if plan.shape == "star":
        rows = [_star_row(result.columns, row) for row in result.rows]
    elif plan.shape == "events":
        rows = [_values(plan.outputs, row) for row in result.rows]
    else:
        rows = _aggregate_rows(plan, result.rows)
    return {"results": rows, "metadata": _metadata(plan)}


def json_value(value: Any) -> Any:
    """A stored value as it appears in results (integral floats as integers)."""
    if isinstance(value, Decimal):
        # The compiler emits no DECIMAL, but one must never reach JSON (which cannot
        # carry it) or show as 3.99999999999999984; NRQL numbers are doubles.
        value = float(value)
    if isinstance(value, float):
        if math.isnan(value):  # NaN (an empty average on some backends) shows as no value
            return None
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


def _decode(value: Any, decode: Decode) -> Any:
    if value is None:
        return [] if decode in (Decode.LIST, Decode.JSON_LIST) else None
    if decode is Decode.JSON and isinstance(value, str):
        return json_value(orjson.loads(value))
    if decode is Decode.JSON_LIST and isinstance(value, list | tuple):
        return [_decode(item, Decode.JSON) for item in value]
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return json_value(value)


def _star_row(columns: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
    by_name = dict(zip(columns, row))
    event: dict[str, Any] = orjson.loads(by_name[ATTRS_COLUMN] or "{}")
    for hot in HOT_COLUMNS:
        value = by_name.get(hot.column)
        if value is not None:
            event[hot.attribute] = json_value(value)
    event["timestamp"] = by_name["timestamp"]
    return event


def _values(outputs: list[OutputColumn], row: tuple[Any, ...] | None) -> dict[str, Any]:
    """Output keys -> values; compound parts are merged (percentiles, histogram buckets)."""
    record: dict[str, Any] = {}
    for index, output in enumerate(outputs):
        value = json_value(output.empty) if row is None else _decode(row[index], output.decode)
        if output.part is None:
            record[output.key] = value
        elif isinstance(output.part, int):
            if not isinstance(record.get(output.key), list):
                record[output.key] = []
            record[output.key].append(value)
        else:
            if not isinstance(record.get(output.key), dict):
                record[output.key] = {}
            record[output.key][output.part] = value
    return record


def _aggregate_rows(plan: Plan, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    facet_count = len(plan.facet_keys)
    compared = plan.compare_ms is not None
    timed = plan.bucket_ms is not None
    value_outputs = plan.outputs[facet_count:]
    facet_outputs = plan.outputs[:facet_count]

    groups: dict[Group, dict[int, tuple[Any, ...]]] = {}
    if not facet_count:
        for label in (("current", "previous") if compared else (None,)):
            groups[(label,)] = {}
    for row in rows:
        at = 1 if compared else 0
        group = ((row[0] if compared else None),) + tuple(row[at:at + facet_count])
        at += facet_count
        bucket = int(row[at]) if timed else 0
        at += 1 if timed else 0
        groups.setdefault(group, {})[bucket] = row[at:at + len(value_outputs)]

    if timed and len(groups) * _bucket_count(plan) > MAX_SERIES_ROWS:
        raise NrqlError(
            f"the query would return {len(groups):,} series of {_bucket_count(plan):,} "
            f"TIMESERIES buckets, {len(groups) * _bucket_count(plan):,} rows; the most "
            f"allowed is {MAX_SERIES_ROWS:,}: lower the FACET LIMIT, or use wider buckets or "
            "a shorter time range")
    results = []
    for group, buckets in groups.items():
        head = _group_fields(group, facet_outputs, compared)
        indexes = range(_bucket_count(plan)) if timed else [0]
        for index in indexes:
            record = dict(head)
            if timed:
                record.update(_bucket_times(plan, index))
            record.update(_values(value_outputs, buckets.get(index)))
            results.append(record)
    return results


def _group_fields(group: Group, facet_outputs: list[OutputColumn],
                  compared: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if facet_outputs:
        values = [_decode(value, output.decode) for output, value in zip(facet_outputs, group[1:])]
        fields["facet"] = values[0] if len(values) == 1 else values
        for output, value in zip(facet_outputs, values):
            fields[output.key] = value
    if compared:
        fields["comparison"] = group[0]
    return fields


def _bucket_count(plan: Plan) -> int:
    stride = plan.step_ms or plan.bucket_ms
    assert stride
    return -(-(plan.end_ms - plan.begin_ms) // stride)


def _bucket_times(plan: Plan, index: int) -> dict[str, Any]:
    assert plan.bucket_ms
    begin = plan.begin_ms + index * (plan.step_ms or plan.bucket_ms)
    end = min(begin + plan.bucket_ms, plan.end_ms)
    return {"beginTimeSeconds": json_value(begin / 1000),
            "endTimeSeconds": json_value(end / 1000)}


def _metadata(plan: Plan) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "eventTypes": plan.event_types,
        "eventType": plan.event_types[0] if plan.event_types else None,
        "facets": plan.facet_keys,
        "timeWindow": {"begin": plan.begin_ms, "end": plan.end_ms},
        "messages": list(plan.messages),
    }
    if plan.bucket_ms is not None:
        metadata["timeSeries"] = {"bucketSizeMillis": plan.bucket_ms}
    if plan.compare_ms is not None:
        metadata["timeWindow"]["compareWith"] = plan.compare_ms
    return metadata
