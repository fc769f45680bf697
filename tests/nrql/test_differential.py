"""Clauses and functions over the shared public samples, checked against answers
computed here in plain Python from the same events (not through SQL).

The samples are ~400 real CloudTrail records and GuardDuty findings, as
`trailguard import` reads them (../shared/samples; skipped when absent).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from nrql.support import NOW_MS, sample_events

from trailguard.events import Event
from trailguard.nrql import run_nrql

SINCE_MS = NOW_MS - 20 * 365 * 86_400_000
WINDOW = " SINCE 20 years ago"
Predicate = Callable[[Event], bool]


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return window_events()


def window_events() -> list[Event]:
    """The stored events (duplicates dropped as the store does) inside the query window."""
    seen: set[str] = set()
    kept = []
    for event in sample_events():
        if event.dedup_key is not None:
            if event.dedup_key in seen:
                continue
            seen.add(event.dedup_key)
        if SINCE_MS <= event.timestamp < NOW_MS:
            kept.append(event)
    return kept


def trail(events: list[Event], keep: Predicate = lambda e: True) -> list[Event]:
    return [event for event in events if event.event_type == "InfrastructureEvent" and keep(event)]


def attr(event: Event, name: str) -> Any:
    return event.attributes.get(name)


def text(event: Event, name: str) -> str:
    return str(attr(event, name) or "")


CONDITIONS: list[tuple[str, Predicate]] = [
    ("eventName LIKE '%policy%'", lambda e: "policy" in text(e, "eventName").lower()),
    ("eventName NOT LIKE 'Get%'",
     lambda e: attr(e, "eventName") is not None and not text(e, "eventName").startswith("Get")),
    ("errorCode IS NOT NULL", lambda e: attr(e, "errorCode") is not None),
    ("errorCode IS NULL", lambda e: attr(e, "errorCode") is None),
    ("awsRegion IN ('us-east-1', 'us-west-2')",
     lambda e: attr(e, "awsRegion") in ("us-east-1", "us-west-2")),
    ("userIdentity.type = 'Root'", lambda e: attr(e, "userIdentity.type") == "Root"),
    ("eventName RLIKE 'Create.*'", lambda e: re.fullmatch("Create.*", text(e, "eventName"))
     is not None),
    ("eventSource = 'iam.amazonaws.com' AND errorCode IS NULL",
     lambda e: attr(e, "eventSource") == "iam.amazonaws.com" and attr(e, "errorCode") is None),
    ("eventSource = 's3.amazonaws.com' OR eventSource = 'kms.amazonaws.com'",
     lambda e: attr(e, "eventSource") in ("s3.amazonaws.com", "kms.amazonaws.com")),
    ("responseElements.ConsoleLogin = 'Failure'",
     lambda e: attr(e, "responseElements.ConsoleLogin") == "Failure"),
]


@pytest.mark.parametrize(("condition", "keep"), CONDITIONS, ids=[c for c, _ in CONDITIONS])
def test_where(samples_store: Any, events: list[Event], condition: str, keep: Predicate) -> None:
    expected = len(trail(events, keep))
    rows = run_nrql(samples_store, f"FROM InfrastructureEvent SELECT count(*) WHERE {condition}"
                    + WINDOW, NOW_MS)["results"]
    assert rows == [{"count": expected}]


def top(counter: Counter[Any], limit: int) -> list[tuple[Any, int]]:
    """Most frequent first; ties broken by value, as the store orders facets."""
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:limit]


@pytest.mark.parametrize("attribute", ["eventSource", "eventName", "awsRegion",
                                       "userIdentity.type"])
def test_facet(samples_store: Any, events: list[Event], attribute: str) -> None:
    counts = Counter(attr(e, attribute) for e in trail(events) if attr(e, attribute) is not None)
    rows = run_nrql(samples_store, f"FROM InfrastructureEvent SELECT count(*) WHERE {attribute} "
                    f"IS NOT NULL FACET {attribute} LIMIT 7" + WINDOW, NOW_MS)["results"]
    assert [(row["facet"], row["count"]) for row in rows] == top(counts, 7)


def test_facet_cases(samples_store: Any, events: list[Event]) -> None:
    failed = sum(1 for e in trail(events) if attr(e, "errorCode") is not None)
    succeeded = len(trail(events)) - failed
    rows = run_nrql(samples_store, "FROM InfrastructureEvent SELECT count(*) FACET CASES ("
                    "WHERE errorCode IS NULL AS 'ok', WHERE errorCode IS NOT NULL AS 'failed')"
                    + WINDOW, NOW_MS)["results"]
    assert {row["facet"]: row["count"] for row in rows} == {"ok": succeeded, "failed": failed}


def test_unique_aggregates(samples_store: Any, events: list[Event]) -> None:
    names = {attr(e, "eventName") for e in trail(events)} - {None}
    regions = sorted({attr(e, "awsRegion") for e in trail(events)} - {None})
    rows = run_nrql(samples_store, "FROM InfrastructureEvent SELECT uniqueCount(eventName), "
                    "uniques(awsRegion), uniqueCount(eventSource, awsRegion)" + WINDOW,
                    NOW_MS)["results"]
    pairs = {(attr(e, "eventSource"), attr(e, "awsRegion")) for e in trail(events)}
    assert rows == [{"uniqueCount.eventName": len(names), "uniques.awsRegion": regions,
                     "uniqueCount.eventSource": len(pairs)}]


def test_latest_and_earliest(samples_store: Any, events: list[Event]) -> None:
    named = [e for e in trail(events) if attr(e, "eventName") is not None]
    newest = max(e.timestamp for e in named)
    oldest = min(e.timestamp for e in named)
    row = run_nrql(samples_store, "FROM InfrastructureEvent SELECT latest(eventName), "
                   "earliest(eventName)" + WINDOW, NOW_MS)["results"][0]
    assert row["latest.eventName"] in {attr(e, "eventName") for e in named
                                       if e.timestamp == newest}
    assert row["earliest.eventName"] in {attr(e, "eventName") for e in named
                                         if e.timestamp == oldest}


def r7_percentile(values: list[float], point: float) -> float:
    """Linear interpolation between closest ranks (the usual 'type 7' percentile)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * point / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_numeric_aggregates_on_findings(samples_store: Any, events: list[Event]) -> None:
    severities = [float(attr(e, "detail.severity")) for e in events
                  if e.event_type == "Log" and isinstance(attr(e, "detail.severity"), int | float)]
    row = run_nrql(samples_store, "FROM Log SELECT sum(detail.severity), min(detail.severity), "
                   "max(detail.severity), average(detail.severity), "
                   "percentile(detail.severity, 50, 90)" + WINDOW, NOW_MS)["results"][0]
    assert len(severities) >= 5
    assert row["sum.detail.severity"] == pytest.approx(sum(severities))
    assert row["min.detail.severity"] == min(severities)
    assert row["max.detail.severity"] == max(severities)
    assert row["average.detail.severity"] == pytest.approx(sum(severities) / len(severities))
    assert row["percentile.detail.severity"] == {
        "50": pytest.approx(r7_percentile(severities, 50)),
        "90": pytest.approx(r7_percentile(severities, 90))}


def test_timeseries_buckets(samples_store: Any, events: list[Event]) -> None:
    width = 365 * 86_400_000
    counts = Counter((e.timestamp - SINCE_MS) // width for e in trail(events))
    rows = run_nrql(samples_store, "FROM InfrastructureEvent SELECT count(*) TIMESERIES 1 year"
                    + WINDOW, NOW_MS)["results"]
    assert [row["count"] for row in rows] == [counts.get(index, 0) for index in range(20)]
    assert rows[0]["beginTimeSeconds"] == SINCE_MS // 1000


def test_facet_by_hour_of_day(samples_store: Any, events: list[Event]) -> None:
    hours = Counter(datetime.fromtimestamp(e.timestamp / 1000, UTC).strftime("%H:00")
                    for e in trail(events))
    rows = run_nrql(samples_store, "FROM InfrastructureEvent SELECT count(*) "
                    "FACET hourOf(timestamp) LIMIT 5" + WINDOW, NOW_MS)["results"]
    assert [(row["facet"], row["count"]) for row in rows] == top(hours, 5)


def test_rows_are_newest_first(samples_store: Any, events: list[Event]) -> None:
    newest = sorted(trail(events), key=lambda e: -e.timestamp)[:5]
    rows = run_nrql(samples_store, "FROM InfrastructureEvent SELECT eventName, timestamp LIMIT 5"
                    + WINDOW, NOW_MS)["results"]
    assert [row["timestamp"] for row in rows] == [e.timestamp for e in newest]
