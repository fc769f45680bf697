"""Each clause and function on hand-checkable events, with exact expected results.

Every case runs on DuckDB and on ClickHouse (chdb), so the two dialects are held
to the same answers. The events are in `conftest.synthetic_events`:
InfrastructureEvent i = 0..9 at NOW - (55 - i) minutes, bytes = 10 * i, errors
at i = 1 and 7; three GuardDuty logs at NOW - 30, 29, 28 minutes.
"""

from __future__ import annotations

from typing import Any

import pytest
from nrql.support import NOW_MS

from trailguard.nrql import run_nrql

CT = "FROM InfrastructureEvent SELECT "


def results(store: Any, nrql: str) -> list[dict[str, Any]]:
    return run_nrql(store, nrql, NOW_MS)["results"]


AGGREGATES = [
    (CT + "count(*)", {"count": 10}),
    ("FROM InfrastructureEvent, Log SELECT count(*)", {"count": 13}),
    (CT + "count(errorCode)", {"count.errorCode": 2}),
    (CT + "uniqueCount(sourceIPAddress)", {"uniqueCount.sourceIPAddress": 4}),
    (CT + "uniqueCount(awsRegion, mfa)", {"uniqueCount.awsRegion": 5}),
    (CT + "uniqueCount(sourceIPAddress, precision: 1000)", {"uniqueCount.sourceIPAddress": 4}),
    (CT + "sum(bytes), average(bytes), min(bytes), max(bytes)",
     {"sum.bytes": 450, "average.bytes": 45, "min.bytes": 0, "max.bytes": 90}),
    (CT + "latest(eventName), earliest(eventName)",
     {"latest.eventName": "StopLogging", "earliest.eventName": "ConsoleLogin"}),
    (CT + "latest(timestamp)", {"latest.timestamp": NOW_MS - 46 * 60_000}),
    (CT + "percentage(count(*), WHERE errorCode IS NOT NULL)", {"percentage": 20}),
    (CT + "filter(count(*), WHERE eventName = 'ConsoleLogin') AS 'logins'", {"logins": 4}),
    (CT + "filter(count(*), WHERE awsRegion = 'us-east-1') * 100 / count(*) AS 'share'",
     {"share": 60}),
    (CT + "filter(sum(bytes), WHERE mfa IS TRUE) AS 'b'", {"b": 200}),
    (CT + "percentile(bytes, 50, 90)", {"percentile.bytes": {"50": 45, "90": 81}}),
    (CT + "median(bytes)", {"median.bytes": 45}),
    (CT + "round(stddev(bytes) * 100) AS 'sd'", {"sd": 2872}),
    (CT + "rate(count(*), 1 hour) SINCE 2 hours ago", {"rate": 5}),
    (CT + "uniques(awsRegion)", {"uniques.awsRegion": ["ap-south-1", "eu-west-1", "us-east-1"]}),
    (CT + "uniques(userIdentity.userName, 2)",
     {"uniques.userIdentity.userName": ["user_0", "user_1"]}),
    (CT + "histogram(bytes, 20, 5)", {"histogram.bytes": [2, 2, 2, 2, 2]}),
    (CT + "histogram(bytes, width: 30, buckets: 2, start: 10)", {"histogram.bytes": [4, 6]}),
    (CT + "round(average(bytes) / 7) AS 'r'", {"r": 6}),
    (CT + "max(length(eventName)) AS 'longest'", {"longest": 12}),
    (CT + "if(min(bytes) < 1, 'yes', 'no') AS 'zero'", {"zero": "yes"}),
    (CT + "3 AS 'constant', count(*)", {"constant": 3, "count": 10}),
    ("FROM Log SELECT count(*) WHERE numeric(detail.severity) > 5", {"count": 2}),
    (CT + "count(*) SINCE 1 minute ago", {"count": 0}),
    (CT + "average(bytes) SINCE 1 minute ago", {"average.bytes": None}),
    (CT + "uniques(awsRegion) SINCE 1 minute ago", {"uniques.awsRegion": []}),
]


@pytest.mark.parametrize(("nrql", "expected"), AGGREGATES)
def test_aggregates(synthetic: Any, nrql: str, expected: dict[str, Any]) -> None:
    assert results(synthetic, nrql) == [expected]


CONDITIONS = [
    ("eventName LIKE 'console%'", 4),              # LIKE ignores case
    ("eventName LIKE 'Get%ect'", 3),
    ("eventName LIKE 'getobject'", 3),             # no % still ignores case
    ("requestID LIKE 'Req_0%'", 0),                # _ is not a wildcard in NRQL
    ("requestID LIKE 'Req-0%'", 10),
    ("eventName NOT LIKE '%Object'", 6),
    ("eventName RLIKE 'Get.*'", 3),
    ("eventName RLIKE 'Object'", 0),               # RLIKE matches the whole value
    ("eventName NOT RLIKE r'.*Object'", 6),
    ("mfa IS TRUE", 5),
    ("mfa IS FALSE", 5),
    ("mfa IS NOT TRUE", 5),
    ("errorMessage IS NULL", 8),
    ("errorMessage IS NOT NULL", 2),
    ("awsRegion IN ('eu-west-1', 'ap-south-1')", 4),
    ("awsRegion NOT IN ('eu-west-1', 'ap-south-1')", 6),
    ("awsRegion IN ()", 0),
    ("bytes >= 50 AND bytes < 80", 3),
    ("bytes = 50 OR bytes = 60 AND awsRegion = 'us-east-1'", 1),   # AND binds tighter
    ("(bytes = 50 OR bytes = 60) AND awsRegion = 'us-east-1'", 1),
    ("NOT (bytes > 10)", 2),
    ("provider = 'CloudTrail' (errorCode IS NOT NULL OR awsRegion = 'ap-south-1')", 3),
    ("provider = 'CloudTrail' `eventName` = 'GetObject'", 3),
    ("awsRegion = 'us-east-1' WHERE eventName = 'ConsoleLogin'", 3),
    ("eventName = 'consolelogin'", 0),              # = is case-sensitive
    ("requestID IN ('x\\\\y', 'line\\nbreak', 'Req-05')", 1),  # escapes reach SQL intact
    ("api.response.error != 'null'", 0),            # missing attributes never compare
    (("sourceIPAddress IN (FROM InfrastructureEvent SELECT uniques(sourceIPAddress) "
      "WHERE errorCode IS NOT NULL)"), 5),
    (("sourceIPAddress NOT IN (SELECT uniques(sourceIPAddress) FROM InfrastructureEvent "
      "WHERE errorCode IS NOT NULL)"), 5),
    ("lower(awsRegion) = 'us-east-1' AND upper(eventName) = 'GETOBJECT'", 2),
    ("concat(awsRegion, '/', eventName) = 'eu-west-1/GetObject'", 1),
    ("substring(requestID, 4) = '09'", 1),
    ("substring(requestID, -2, 1) = '0'", 10),
    ("if(bytes > 45, 'big', 'small') = 'big'", 5),
    ("numeric(bytes) > 85", 1),
    ("string(bytes) = '30'", 1),
    ("capture(requestID, r'Req-(?P<n>\\d+)') = '07'", 1),
    ("aparse(requestID, 'req-*') = '03'", 1),       # aparse ignores case
    ("eventType() = 'InfrastructureEvent'", 10),
    ("(errorCode OR 'none') = 'none'", 8),          # `a OR b`: the first with a value
]


@pytest.mark.parametrize(("condition", "count"), CONDITIONS)
def test_conditions(synthetic: Any, condition: str, count: int) -> None:
    assert results(synthetic, f"{CT}count(*) WHERE {condition}") == [{"count": count}]


FACETS = [
    (CT + "count(*) FACET awsRegion",
     [("us-east-1", 6), ("eu-west-1", 3), ("ap-south-1", 1)]),
    (CT + "count(*) FACET awsRegion LIMIT 2", [("us-east-1", 6), ("eu-west-1", 3)]),
    (CT + "count(*) FACET eventName, awsRegion LIMIT 2",
     [(["ConsoleLogin", "us-east-1"], 3), (["GetObject", "us-east-1"], 2)]),
    # sum() is not a ranking function: facets are chosen by event count
    (CT + "sum(bytes) FACET awsRegion",
     [("us-east-1", 240), ("eu-west-1", 150), ("ap-south-1", 60)]),
    (CT + "max(bytes) FACET awsRegion",
     [("eu-west-1", 90), ("us-east-1", 80), ("ap-south-1", 60)]),
    (CT + "max(bytes) FACET awsRegion ORDER BY count(*)",
     [("us-east-1", 80), ("eu-west-1", 90), ("ap-south-1", 60)]),
    (CT + "count(*) FACET concat(awsRegion, ':', eventName) LIMIT 1",
     [("us-east-1:ConsoleLogin", 3)]),
    (CT + "count(*) FACET CASES (WHERE errorMessage IS NULL AS 'Successful login', "
          "WHERE errorMessage IS NOT NULL as 'Failed login') WHERE eventName = 'ConsoleLogin'",
     [("Failed login", 2), ("Successful login", 2)]),
    (CT + "count(*) FACET CASES (WHERE errorCode IS NOT NULL AS 'Failed') OR eventName",
     [("GetObject", 3), ("ConsoleLogin", 2), ("Failed", 2), ("DeleteTrail", 1),
      ("PutObject", 1), ("StopLogging", 1)]),
    (CT + "count(*) FACET cases(WHERE bytes < 30 AS 'low', bytes >= 70 AS 'high')",
     [("high", 3), ("low", 3)]),
    (CT + "count(*) FACET hourOf(timestamp)", [("21:00", 10)]),
    (CT + "count(*) FACET dateOf(timestamp)", [("2023-11-14", 10)]),
    (CT + "count(*) FACET weekdayOf(timestamp)", [("Tuesday", 10)]),
    (CT + "count(*) FACET monthOf(timestamp)", [("November 2023", 10)]),
    ("FROM InfrastructureEvent, Log SELECT count(*) FACET eventType()",
     [("InfrastructureEvent", 10), ("Log", 3)]),
    ("FROM Log SELECT count(*) FACET capture(message, r'Finding_(?P<n>\\d+):.*') LIMIT 2",
     [("0", 1), ("1", 1)]),
    ("FROM Log SELECT count(*) FACET aparse(message, 'finding_*:%') LIMIT 1", [("0", 1)]),
    (CT + "count(*) FACET if(bytes > 45, 'big', 'small')", [("big", 5), ("small", 5)]),
    (CT + "count(*) FACET substring(eventName, 0, 3) LIMIT 2", [("Con", 4), ("Get", 3)]),
    (CT + "count(*) FACET awsRegion AS 'Region' LIMIT 1", [("us-east-1", 6)]),
    (CT + "count(*) FACET errorCode", [(None, 8), ("AccessDenied", 2)]),
]


@pytest.mark.parametrize(("nrql", "expected"), FACETS)
def test_facets(synthetic: Any, nrql: str, expected: list[tuple[Any, Any]]) -> None:
    rows = results(synthetic, nrql)
    value_key = [key for key in rows[0] if key not in ("facet",)][-1]
    assert [(row["facet"], row[value_key]) for row in rows] == expected


def test_facet_rows_carry_each_facet_attribute(synthetic: Any) -> None:
    rows = results(synthetic, CT + "count(*) FACET eventName, awsRegion AS 'Region' LIMIT 1")
    assert rows == [{"facet": ["ConsoleLogin", "us-east-1"], "eventName": "ConsoleLogin",
                     "Region": "us-east-1", "count": 3}]


def test_timeseries_fills_empty_buckets(synthetic: Any) -> None:
    rows = results(synthetic, CT + "count(*), average(bytes) SINCE 60 minutes ago "
                                   "TIMESERIES 10 minutes")
    begin = (NOW_MS - 3_600_000) // 1000
    assert [row["count"] for row in rows] == [5, 5, 0, 0, 0, 0]
    assert [row["average.bytes"] for row in rows] == [20, 70, None, None, None, None]
    assert [(row["beginTimeSeconds"], row["endTimeSeconds"]) for row in rows[:2]] == [
        (begin, begin + 600), (begin + 600, begin + 1200)]


def test_slide_by_counts_each_event_in_every_overlapping_window(synthetic: Any) -> None:
    rows = results(synthetic, CT + "count(*), uniqueCount(awsRegion) SINCE 60 minutes ago "
                                   "TIMESERIES 10 minutes SLIDE BY 5 minutes")
    begin = (NOW_MS - 3_600_000) // 1000
    assert [(row["count"], row["uniqueCount.awsRegion"]) for row in rows[:4]] == [
        (5, 2), (10, 3), (5, 3), (0, 0)]
    assert len(rows) == 12
    assert (rows[1]["beginTimeSeconds"], rows[1]["endTimeSeconds"]) == (begin + 300, begin + 900)


def test_slide_by_with_facets(synthetic: Any) -> None:
    rows = results(synthetic, CT + "count(*) FACET awsRegion SINCE 60 minutes ago "
                                   "TIMESERIES 600000 SLIDE BY 300000 LIMIT 1")
    assert [(row["facet"], row["count"]) for row in rows[:4]] == [
        ("us-east-1", 3), ("us-east-1", 6), ("us-east-1", 3), ("us-east-1", 0)]


def test_timeseries_arithmetic_keys_and_empty_buckets(synthetic: Any) -> None:
    rows = results(synthetic, "SELECT sum(bytes) / 10 from InfrastructureEvent where "
                              "provider='CloudTrail' TIMESERIES 30 minutes since 1 hour ago")
    assert [row["sum(bytes) / 10"] for row in rows] == [45, 0]


@pytest.mark.parametrize(("clause", "buckets", "width_s"), [
    ("TIMESERIES", 60, 60),                         # bare: automatic, 1 minute over 1 hour
    ("TIMESERIES AUTO SINCE 1 day ago", 48, 1800),
    ("TIMESERIES MAX SINCE 1 day ago", 360, 240),
    ("TIMESERIES 300000", 12, 300),                 # a bare number is milliseconds
    ("TIMESERIES 1 MINUTES", 60, 60),
])
def test_timeseries_bucket_widths(synthetic: Any, clause: str, buckets: int,
                                  width_s: int) -> None:
    rows = results(synthetic, f"{CT}count(*) {clause}")
    assert len(rows) == buckets
    assert rows[0]["endTimeSeconds"] - rows[0]["beginTimeSeconds"] == width_s
    assert sum(row["count"] for row in rows) == 10


def test_faceted_timeseries_keeps_top_facets_over_the_window(synthetic: Any) -> None:
    rows = results(synthetic, CT + "count(*) FACET awsRegion SINCE 60 minutes ago "
                                   "TIMESERIES 10 minutes LIMIT 2")
    series = {}
    for row in rows:
        series.setdefault(row["facet"], []).append(row["count"])
    assert list(series) == ["us-east-1", "eu-west-1"]
    assert series == {"us-east-1": [3, 3, 0, 0, 0, 0], "eu-west-1": [2, 1, 0, 0, 0, 0]}


def test_compare_with(synthetic: Any) -> None:
    rows = results(synthetic, CT + "count(*) SINCE 50 minutes ago COMPARE WITH 10 minutes ago")
    assert rows == [{"comparison": "current", "count": 5},
                    {"comparison": "previous", "count": 10}]


def test_compare_with_timeseries(synthetic: Any) -> None:
    rows = results(synthetic, CT + "count(*) SINCE 50 minutes ago UNTIL 40 minutes ago "
                                   "COMPARE WITH 5 minutes ago TIMESERIES 5 minutes")
    assert [(row["comparison"], row["count"]) for row in rows] == [
        ("current", 5), ("current", 0), ("previous", 5), ("previous", 5)]


def test_compare_with_facet_picks_facets_from_current_window(synthetic: Any) -> None:
    rows = results(synthetic, CT + "count(*) FACET eventName SINCE 50 minutes ago "
                                   "COMPARE WITH 10 minutes ago LIMIT 1")
    # Current window: i = 5..9, one event per name; ties go to the first name.
    assert rows == [
        {"facet": "ConsoleLogin", "eventName": "ConsoleLogin", "comparison": "current",
         "count": 1},
        {"facet": "ConsoleLogin", "eventName": "ConsoleLogin", "comparison": "previous",
         "count": 4}]


NESTED = [
    (("FROM (FROM InfrastructureEvent SELECT uniqueCount(sourceIPAddress) AS 'ips', "
     "latest(eventName) FACET awsRegion) SELECT sum(ips) AS 'total', max(ips), count(*), "
     "uniques(latest.eventName)"),
     [{"total": 7, "max.ips": 3, "count": 3,
       "uniques.latest.eventName": ["DeleteTrail", "GetObject", "StopLogging"]}]),
    (("FROM (FROM InfrastructureEvent SELECT count(*) AS 'n' FACET awsRegion, eventName "
     "LIMIT MAX) SELECT max(n) FACET awsRegion WHERE n > 1"),
     [{"facet": "us-east-1", "awsRegion": "us-east-1", "max.n": 3}]),
    (("FROM (FROM InfrastructureEvent SELECT count(*) AS 'n' FACET awsRegion "
     "TIMESERIES 10 minutes) SELECT max(n) SINCE 1 hour ago"), [{"max.n": 3}]),
    (("FROM (FROM InfrastructureEvent SELECT count(*) AS 'n' FACET awsRegion) SELECT sum(n) "
     "SINCE 30 minutes ago UNTIL 10 minutes ago"), [{"sum.n": 0}]),
]


@pytest.mark.parametrize(("nrql", "expected"), NESTED)
def test_nested_aggregation(synthetic: Any, nrql: str, expected: list[dict[str, Any]]) -> None:
    assert results(synthetic, nrql) == expected


def test_nested_aggregation_timeseries(synthetic: Any) -> None:
    rows = results(synthetic, "FROM (FROM InfrastructureEvent SELECT count(*) AS 'n' FACET "
                              "awsRegion) SELECT sum(n), max(n) SINCE 1 hour ago "
                              "TIMESERIES 10 minutes")
    assert [(row["sum.n"], row["max.n"]) for row in rows] == [
        (5, 3), (5, 3), (0, None), (0, None), (0, None), (0, None)]


WINDOWS = [
    ("SINCE 50 minutes ago UNTIL 48 minutes ago", 2),     # SINCE inclusive, UNTIL exclusive
    (f"SINCE {NOW_MS - 55 * 60_000}", 10),
    (f"SINCE {NOW_MS - 55 * 60_000} UNTIL {NOW_MS - 54 * 60_000}", 1),
    ("SINCE '2023-11-14 21:18:20'", 10),
    ("SINCE '2023-11-14 21:19:00'", 9),
    ("SINCE '2023-11-14T16:19:00-0500'", 9),
    ("SINCE today", 10),
    ("SINCE yesterday UNTIL today", 0),
    ("SINCE this week", 10),
    ("SINCE last week UNTIL this week", 0),
    ("SINCE 1 WEEK AGO", 10),
    ("", 10),                                              # default: the last hour
]


@pytest.mark.parametrize(("clause", "count"), WINDOWS)
def test_time_windows(synthetic: Any, clause: str, count: int) -> None:
    assert results(synthetic, f"{CT}count(*) {clause}") == [{"count": count}]


def test_with_timezone_moves_calendar_references(synthetic: Any) -> None:
    utc = run_nrql(synthetic, CT + "count(*) SINCE today", NOW_MS)["metadata"]["timeWindow"]
    new_york = run_nrql(synthetic, CT + "count(*) SINCE today WITH TIMEZONE 'America/New_York'",
                        NOW_MS)["metadata"]["timeWindow"]
    assert (utc["begin"], new_york["begin"]) == (1_699_920_000_000, 1_699_938_000_000)


EVENTS = [
    (CT + "eventName LIMIT 2 OFFSET 1", ["GetObject", "ConsoleLogin"]),   # newest first
    (CT + "eventName ORDER BY bytes LIMIT 2", ["ConsoleLogin", "ConsoleLogin"]),
    (CT + "eventName WHERE eventName LIKE '%trail' ", ["DeleteTrail"]),
    (CT + "eventName AS 'name' LIMIT 1", ["StopLogging"]),
]


@pytest.mark.parametrize(("nrql", "names"), EVENTS)
def test_event_rows(synthetic: Any, nrql: str, names: list[str]) -> None:
    rows = results(synthetic, nrql)
    assert [row.get("eventName", row.get("name")) for row in rows] == names


def test_select_star_returns_whole_events(synthetic: Any) -> None:
    rows = results(synthetic, CT + "* LIMIT 1")
    assert rows[0]["eventName"] == "StopLogging"
    assert rows[0]["timestamp"] == NOW_MS - 46 * 60_000
    assert rows[0]["bytes"] == 90
