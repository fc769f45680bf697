"""Numbers that NRQL scales or buckets (rate, percentage, derivative, histogram, percentile)
come back as exact doubles on DuckDB and ClickHouse (chdb), checked against Python.

DuckDB types a pasted `0.1666` as DECIMAL, which JSON cannot carry (a 500 from the API)
and which shows as 3.99999999999999984; no such value may reach a result, and the raw
rows must not hold one either. Also: regular expressions RE2 accepts run, and errors
the backend raises for the data (a bad regex read from an attribute) are NrqlErrors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from nrql.support import NOW_MS, ChdbStore, make_store

from trailguard.errors import NrqlError
from trailguard.events import Event
from trailguard.nrql import compile_nrql, run_nrql
from trailguard.store.duckdb_store import DuckDBStore

HOUR = 3_600_000
SPAN = 6 * HOUR
NAMES = ("ConsoleLogin", "CreateUser", "GetObject")
CT = "FROM InfrastructureEvent SELECT "
WINDOW = " SINCE 6 hours ago"


def rate_events() -> list[Event]:
    """Exactly four events in every hour of the last six, 15 minutes apart."""
    return [Event("InfrastructureEvent", NOW_MS - SPAN + index * HOUR // 4 + 1000, {
        "eventName": NAMES[index % 3], "user": f"u{index % 5}", "bytes": index * 1.5,
        "pattern": "(a{1000}){1000}" if index == 0 else "u.*"}, f"rate-{index}")
        for index in range(24)]


EVENTS = rate_events()


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    store = make_store(tmp_path_factory.mktemp("rates"), EVENTS)
    yield store
    store.close()


@pytest.fixture(scope="module", params=["duckdb", "clickhouse"])
def store(request: pytest.FixtureRequest, duck: DuckDBStore,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if request.param == "duckdb":
        yield duck
        return
    pytest.importorskip("chdb", reason="chdb (the ClickHouse engine) is in the test extra")
    chdb_store = ChdbStore(duck, Path(tmp_path_factory.mktemp("chdb_rates")))
    yield chdb_store
    chdb_store.close()


def results(store: Any, nrql: str) -> list[dict[str, Any]]:
    return run_nrql(store, nrql, NOW_MS)["results"]


def whole(value: float) -> float | int:
    """As results show numbers: integral floats as integers."""
    return int(value) if float(value).is_integer() else value


def in_hour(event: Event, bucket: int, width: int = HOUR) -> bool:
    return NOW_MS - SPAN + bucket * width <= event.timestamp < NOW_MS - SPAN + (bucket + 1) * width


def test_rate_of_four_events_an_hour_is_exactly_four(store: Any) -> None:
    assert results(store, CT + "rate(count(*), 1 hour)" + WINDOW) == [{"rate": 4}]
    per_minute = results(store, CT + "rate(count(*), 1 minute)" + WINDOW)[0]["rate"]
    assert per_minute == len(EVENTS) * 60_000 / SPAN
    assert type(per_minute) is float


def test_rate_per_timeseries_bucket(store: Any) -> None:
    rows = results(store, CT + "rate(count(*), 1 hour)" + WINDOW + " TIMESERIES 2 hours")
    expected = [whole(sum(in_hour(e, b, 2 * HOUR) for e in EVENTS) * HOUR / (2 * HOUR))
                for b in range(3)]
    assert [row["rate"] for row in rows] == expected == [4, 4, 4]


def test_rate_per_facet_and_of_unique_count(store: Any) -> None:
    rows = results(store, CT + "rate(count(*), 1 hour) AS 'events', rate(uniqueCount(user), "
                   "1 day) AS 'users' FACET eventName" + WINDOW)
    counts = Counter(str(e.attributes["eventName"]) for e in EVENTS)
    users = {name: {e.attributes["user"] for e in EVENTS if e.attributes["eventName"] == name}
             for name in NAMES}
    assert {row["eventName"]: (row["events"], row["users"]) for row in rows} == {
        name: (whole(counts[name] * HOUR / SPAN), whole(len(users[name]) * 24 * HOUR / SPAN))
        for name in NAMES}


def test_rate_with_timeseries_and_facet(store: Any) -> None:
    rows = results(store, CT + "rate(uniqueCount(user), 30 minutes) FACET eventName"
                   + WINDOW + " TIMESERIES 3 hours")
    for row in rows:
        bucket = (row["beginTimeSeconds"] * 1000 - (NOW_MS - SPAN)) // (3 * HOUR)
        users = {e.attributes["user"] for e in EVENTS if in_hour(e, bucket, 3 * HOUR)
                 and e.attributes["eventName"] == row["eventName"]}
        assert row["rate"] == whole(len(users) * 30 * 60_000 / (3 * HOUR))
    assert len(rows) == 6


def test_percentage_derivative_histogram_percentile(store: Any) -> None:
    values = [float(e.attributes["bytes"]) for e in EVENTS]
    row = results(store, CT + "percentage(count(*), WHERE eventName = 'CreateUser') AS 'p', "
                  "histogram(bytes, 7.5, 5, 0.25) AS 'h', percentile(bytes, 12.5) AS 'q', "
                  "derivative(bytes, 1 hour) AS 'd', count(*) * 0.1 AS 'tenth'" + WINDOW)[0]
    assert row["p"] == whole(100 * 8 / 24)
    edges = [0.25 + index * 7.5 for index in range(6)]
    histogram = [0] * 5
    for value in values:
        histogram[max(0, min(4, next(i for i in range(6) if value < edges[i + 1])
                             if value < edges[5] else 4))] += 1
    assert row["h"] == histogram
    assert row["q"] == {"12.5": pytest.approx(sorted(values)[2] + 0.875 * 1.5)}
    # bytes grows 1.5 per event, 4 events an hour: 6 per hour (least squares, exact line).
    assert row["d"] == pytest.approx(6.0)
    assert row["tenth"] == pytest.approx(2.4)


RAW_QUERIES = [
    CT + "rate(count(*), 1 hour)" + WINDOW,
    CT + "rate(sum(bytes), 1 minute) FACET eventName" + WINDOW + " TIMESERIES 1 hour",
    CT + "rate(uniqueCount(user), 1 hour) COMPARE WITH 1 hour ago" + WINDOW,
    CT + "percentage(count(*), WHERE user = 'u1'), derivative(bytes)" + WINDOW,
    CT + "histogram(bytes, 0.1, 3, 0.05), percentile(bytes, 33.3), median(bytes)" + WINDOW,
    CT + "round(average(bytes), 0.5), stddev(bytes) * 0.5, count(*) / 7" + WINDOW,
    CT + "rate(count(*), 1 hour) TIMESERIES 10 minutes SLIDE BY 5 minutes" + WINDOW,
]


def no_decimal(value: Any) -> bool:
    if isinstance(value, dict):
        return all(no_decimal(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(no_decimal(item) for item in value)
    return not isinstance(value, Decimal)


@pytest.mark.parametrize("nrql", RAW_QUERIES)
def test_no_decimal_in_rows_or_results(duck: DuckDBStore, nrql: str) -> None:
    compiled = compile_nrql(nrql, "duckdb", NOW_MS)
    assert no_decimal(duck.read(compiled.sql, compiled.params).rows), compiled.sql
    assert no_decimal(run_nrql(duck, nrql, NOW_MS))


def test_a_decimal_from_the_backend_is_shown_as_a_float() -> None:
    from trailguard.nrql.results import json_value

    assert json_value(Decimal("3.99999999999999984")) == 4
    assert json_value(Decimal("0.25")) == 0.25 and type(json_value(Decimal("0.25"))) is float


def test_nested_repeats_re2_accepts_run(store: Any) -> None:
    # RE2 refuses only a product over 1000: 2 * 500 and 10 * 10 * 10 are fine.
    nrql = CT + "count(*) WHERE user RLIKE r'(u{2}){500}|((u{10}){10}){10}|u.'" + WINDOW
    assert results(store, nrql) == [{"count": 24}]


def test_a_backend_error_on_the_data_is_an_nrql_error(store: Any) -> None:
    # The pattern comes from an event, so only the backend can find it invalid.
    with pytest.raises(NrqlError) as raised:
        results(store, CT + "count(*) WHERE user RLIKE pattern" + WINDOW)
    assert str(raised.value).startswith("the query cannot run on this data: ")
    assert "repetition" in str(raised.value)


def test_backend_errors_split_into_query_and_store_failures() -> None:
    import duckdb

    from trailguard.errors import QueryTooLargeError, StoreError
    from trailguard.nrql.backend_errors import translate

    def kind(error: Exception) -> type | None:
        translated = translate(error, "FROM Log SELECT count(*)")
        return None if translated is None else type(translated)

    assert kind(duckdb.InvalidInputException("invalid repetition size")) is NrqlError
    assert kind(duckdb.ConversionException("out of range")) is NrqlError
    assert kind(duckdb.IOException("disk")) is StoreError
    assert kind(duckdb.OutOfMemoryException("memory")) is QueryTooLargeError
    assert kind(duckdb.CatalogException("no table events")) is StoreError
    assert kind(RuntimeError("Code: 427. DB::Exception: cannot compile re2")) is NrqlError
    assert kind(RuntimeError("Code: 241. DB::Exception: Memory limit exceeded")) \
        is QueryTooLargeError
    assert kind(ValueError("a bug of ours")) is None    # raised unchanged, not hidden
    assert kind(NrqlError("already ours")) is None
