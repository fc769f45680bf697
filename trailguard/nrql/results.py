"""Rows from the store -> the NRQL result JSON New Relic's NerdGraph returns."""

from __future__ import annotations

from typing import Any

import orjson

from trailguard.nrql.attributes import Decode
from trailguard.nrql.compiler import Plan
from trailguard.store.base import QueryResult
from trailguard.store.schema import ATTRS_COLUMN, HOT_COLUMNS


def build_results(plan: Plan, result: QueryResult) -> dict[str, Any]:
    """`{"results": [...], "metadata": {...}}` for the rows of a compiled query."""
    if plan.shape == "star":
        rows = [_star_row(result.columns, row) for row in result.rows]
    elif plan.shape == "facet":
        rows = [_facet_row(plan, row) for row in result.rows]
    else:
        rows = [_plain_row(plan, row) for row in result.rows]
    return {"results": rows, "metadata": _metadata(plan)}


def json_value(value: Any) -> Any:
    """A stored value as it appears in results (integral floats as integers)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _decode(value: Any, decode: Decode) -> Any:
    if value is None:
        return None
    if decode is Decode.JSON and isinstance(value, str):
        return json_value(orjson.loads(value))
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


def _plain_row(plan: Plan, row: tuple[Any, ...]) -> dict[str, Any]:
    return {output.key: _decode(value, output.decode) for output, value in zip(plan.outputs, row)}


def _facet_row(plan: Plan, row: tuple[Any, ...]) -> dict[str, Any]:
    values = _plain_row(plan, row)
    facet_values = [_decode(value, output.decode)
                    for output, value in zip(plan.outputs, row[:len(plan.facet_keys)])]
    facet: Any = facet_values[0] if len(facet_values) == 1 else facet_values
    return {"facet": facet, **values}


def _metadata(plan: Plan) -> dict[str, Any]:
    return {
        "eventTypes": plan.event_types,
        "eventType": plan.event_types[0] if plan.event_types else None,
        "facets": plan.facet_keys,
        "timeWindow": {"begin": plan.begin_ms, "end": plan.end_ms},
        "messages": [],
    }
