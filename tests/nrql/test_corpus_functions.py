"""bytecountestimate(), derivative(), cases() and ORDER BY 'label' (as the corpus's Log
queries use them), on DuckDB and ClickHouse, against answers computed here in Python.

The events are the shared public samples (../shared/samples), as in test_differential.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import pytest
from nrql.support import NOW_MS
from nrql.test_differential import WINDOW, attr, trail, window_events

from trailguard.events import Event
from trailguard.nrql import run_nrql
from trailguard.store.schema import HOT_BY_ATTRIBUTE


@pytest.fixture(params=["duckdb", "clickhouse"])
def store(request: pytest.FixtureRequest) -> Any:
    if request.param == "duckdb":
        return request.getfixturevalue("samples_store")
    pytest.importorskip("chdb", reason="chdb (the ClickHouse engine) is in the test extra")
    return request.getfixturevalue("chdb_samples")


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return window_events()


def json_bytes(event: Event) -> int:
    """The documented estimate: the attributes without a column of their own as compact
    JSON, plus `"name":"value",` for each string and name + 8 bytes for each number that
    has a column."""
    rest, size = {}, 0
    for name, value in event.attributes.items():
        hot = HOT_BY_ATTRIBUTE.get(name)
        if hot is not None and hot.accepts(value):
            size += len(name.encode()) + 6 + (len(value.encode()) if isinstance(value, str)
                                              else 8)
        else:
            rest[name] = value
    text = json.dumps(rest, separators=(",", ":"), ensure_ascii=False)
    return size + len(text.encode())


def test_bytecountestimate(store: Any, events: list[Event]) -> None:
    logs = [e for e in events if e.event_type == "Log"]
    sizes: dict[Any, int] = defaultdict(int)
    for event in logs:
        sizes[attr(event, "detail.type")] += json_bytes(event)
    rows = run_nrql(store, "FROM Log SELECT bytecountestimate(), bytecountestimate() / 10e8 "
                    "AS 'GB' FACET detail.type LIMIT MAX" + WINDOW, NOW_MS)["results"]
    assert {row["facet"]: row["bytecountestimate"] for row in rows} == dict(sizes)
    assert {row["facet"]: row["GB"] for row in rows} == {
        facet: pytest.approx(size / 10e8) for facet, size in sizes.items()}
    total = run_nrql(store, "SELECT bytecountestimate() FROM Log, InfrastructureEvent"
                     + WINDOW, NOW_MS)["results"]
    assert total == [{"bytecountestimate": sum(json_bytes(e) for e in events)}]


def test_bytecountestimate_of_nothing_is_zero(store: Any) -> None:
    rows = run_nrql(store, "FROM SystemSample SELECT bytecountestimate()" + WINDOW,
                    NOW_MS)["results"]
    assert rows == [{"bytecountestimate": 0}]


def least_squares_slope(points: list[tuple[float, float]]) -> float:
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    covariance = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return covariance / sum((t - mean_t) ** 2 for t, _ in points)


def test_derivative_is_the_least_squares_slope(store: Any, events: list[Event]) -> None:
    points = [(float(e.timestamp), float(attr(e, "detail.severity"))) for e in events
              if e.event_type == "Log" and isinstance(attr(e, "detail.severity"), int | float)]
    assert len({t for t, _ in points}) > 2
    row = run_nrql(store, "FROM Log SELECT derivative(detail.severity, 1 day), "
                   "derivative(detail.severity) AS 'per second', derivative(nothing)"
                   + WINDOW, NOW_MS)["results"][0]
    slope = least_squares_slope(points)
    assert row["derivative.detail.severity"] == pytest.approx(slope * 86_400_000, rel=1e-6)
    assert row["per second"] == pytest.approx(slope * 1000, rel=1e-6)
    assert row["derivative.nothing"] is None


def test_count_of_cases_counts_the_matching_events(store: Any, events: list[Event]) -> None:
    failed = len(trail(events, lambda e: attr(e, "errorCode") is not None))
    rows = run_nrql(store, "FROM InfrastructureEvent SELECT count(cases(WHERE errorCode IS NOT "
                    "NULL AS 'failed')) AS 'Failed', count(cases(where errorCode IS NULL)) "
                    "AS 'Succeeded'" + WINDOW, NOW_MS)["results"]
    assert rows == [{"Failed": failed, "Succeeded": len(trail(events)) - failed}]


def test_facet_order_by_a_label_ranks_by_that_item(store: Any, events: list[Event]) -> None:
    names: dict[Any, set[str]] = defaultdict(set)
    counts: Counter[Any] = Counter()
    for event in trail(events):
        counts[attr(event, "awsRegion")] += 1
        if attr(event, "eventName") is not None:
            names[attr(event, "awsRegion")].add(attr(event, "eventName"))
    ranked = sorted(counts, key=lambda region: (-len(names[region]), region or ""))[:3]
    rows = run_nrql(store, "FROM InfrastructureEvent SELECT count(*), uniqueCount(eventName) "
                    "AS 'names' FACET awsRegion LIMIT 3 ORDER BY 'names'" + WINDOW,
                    NOW_MS)["results"]
    assert [(row["facet"], row["names"], row["count"]) for row in rows] == [
        (region, len(names[region]), counts[region]) for region in ranked]
