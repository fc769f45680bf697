"""The parser: clause forms, time points, errors that name position and token."""

from __future__ import annotations

import pytest

from trailguard.errors import NrqlError, NrqlUnsupportedError
from trailguard.nrql import ast, parse
from trailguard.nrql.timewindow import bucket_width, resolve_time

NOW = 1_700_000_000_000          # Tuesday 2023-11-14 22:13:20 UTC
DAY = 86_400_000


@pytest.mark.parametrize(("nrql", "field", "expected"), [
    ("SELECT count(*) FROM Log TIMESERIES", "timeseries", "auto"),
    ("SELECT count(*) FROM Log TIMESERIES auto", "timeseries", "auto"),
    ("SELECT count(*) FROM Log TIMESERIES MAX", "timeseries", "max"),
    ("SELECT count(*) FROM Log TIMESERIES 5 minutes", "timeseries", 300_000),
    ("SELECT count(*) FROM Log TIMESERIES 300000 SLIDE BY 60000", "slide", 60_000),
    ("SELECT count(*) FROM Log TIMESERIES 1 hour SLIDE BY AUTO", "slide", "auto"),
    ("SELECT count(*) FROM Log COMPARE WITH 1 week ago", "compare_ms", 7 * DAY),
    ("SELECT count(*) FROM Log LIMIT MAX", "limit", 5000),
    ("SELECT count(*) FROM Log LIMIT 99999", "limit", 5000),
    ("SELECT x FROM Log LIMIT 5 OFFSET 10", "offset", 10),
    ("SELECT x FROM Log OFFSET 3", "offset", 3),
    ("SELECT x FROM Log WITH TIMEZONE 'Europe/Paris'", "timezone", "Europe/Paris"),
    ("FROM Log, InfrastructureEvent SELECT count(*)", "event_types",
     ["Log", "InfrastructureEvent"]),
    ("SELECT count(*) FROM Log EXTRAPOLATE", "limit", None),
])
def test_clauses(nrql: str, field: str, expected: object) -> None:
    assert getattr(parse(nrql), field) == expected


def test_clause_order_is_free_and_where_repeats() -> None:
    query = parse("FROM Log SELECT count(*) LIMIT 5 FACET a WHERE b = 1 SINCE 1 day ago "
                  "WHERE c = 2")
    assert (query.limit, len(query.facets), query.where.op) == (5, 1, "and")  # type: ignore


def test_facet_cases_with_labels_and_or() -> None:
    text = "FROM Log SELECT sum(x)Facet CASES ( WHERE d = 'e' as 'Egress', WHERE d = 'i') OR y"
    facet = parse(text).facets[0].expr
    assert isinstance(facet, ast.Cases)
    assert [label for _, label in facet.cases] == ["Egress", None]
    assert facet.otherwise == ast.Attribute("y", len(text) - 1)


@pytest.mark.parametrize(("text", "expected"), [
    ("now", NOW),
    ("today", 1_699_920_000_000),
    ("yesterday", 1_699_920_000_000 - DAY),
    ("this week", 1_699_833_600_000),            # Monday 2023-11-13
    ("last week", 1_699_833_600_000 - 7 * DAY),
    ("this month", 1_698_796_800_000),           # 2023-11-01
    ("last month", 1_696_118_400_000),           # 2023-10-01
    ("this quarter", 1_696_118_400_000),
    ("this year", 1_672_531_200_000),
    ("last hour", 1_699_995_600_000),            # 21:00
    ("monday", 1_699_833_600_000),
    ("sunday", 1_699_833_600_000 - DAY),
    ("today AT '09:30'", 1_699_920_000_000 + 9.5 * 3_600_000),
    ("3 days ago", NOW - 3 * DAY),
    ("1 WEEK AGO", NOW - 7 * DAY),
    ("2 quarters ago", NOW - 182 * DAY),
    ("'2023-11-14 10:00:00'", 1_699_956_000_000),
    ("'2023-11-14T10:00-0500'", 1_699_974_000_000),
    ("1699956000000", 1_699_956_000_000),
])
def test_time_points(text: str, expected: int) -> None:
    point = parse(f"SELECT count(*) FROM Log SINCE {text}").since
    assert point is not None
    assert resolve_time(point, NOW) == expected


@pytest.mark.parametrize(("setting", "span", "width"), [
    ("auto", 3_600_000, 60_000), ("auto", DAY, 1_800_000), ("auto", 7 * DAY, 21_600_000),
    ("max", DAY, 240_000), ("max", 3_600_000, 10_000), (300_000, DAY, 300_000),
])
def test_bucket_widths(setting: int | str, span: int, width: int) -> None:
    assert bucket_width(setting, span) == width


@pytest.mark.parametrize(("nrql", "message"), [
    ("SELECT count(*) FROM Log WHERE", ("expected a value, an attribute or a function, found "
                                       "end of query at line 1, column 31")),
    ("SELECT count(* FROM Log", ("expected ',' or ')' in count(...), found 'FROM' at line 1, "
                                "column 16")),
    ("SELECT count(*)\nFROM Log LIMIT x", ("LIMIT (or MAX) takes a whole number, found 'x' at "
                                          "line 2, column 16")),
    ("FROM Log", "missing SELECT, found end of query at line 1, column 9"),
    ("SELECT a FROM Log WHERE b = 'x", "unterminated string at line 1, column 29"),
    ("SELECT a FROM Log SINCE 5 parsecs ago", ("expected a time unit such as 'minutes' or "
                                              "'days', found 'parsecs' at line 1, column 27")),
    ("SELECT a FROM Log WHERE x IN {{v}}", "expected '(', found '{{v}}' at line 1, column 30"),
    ("SELECT count(*) FROM Log WHERE a RLIKE '(?=x)'", ("regular expressions here are RE2: no "
     "lookahead or lookbehind at line 1, column 40")),
    ("SELECT count(*) FROM Log WHERE a RLIKE '(?P<a>x)(?P=a)'", ("regular expressions here are RE2: "
     "no backreferences at line 1, column 40")),
    ("SELECT count(*) FROM Log WHERE a RLIKE 'a++'", ("regular expressions here are RE2: no "
     "possessive quantifiers such as a++ at line 1, column 40")),
    ("SELECT count(*) FROM Log WHERE a RLIKE '(?x) a'", ("regular expressions here are RE2: "
     "inline flags are only i, m, s and U at line 1, column 40")),
    ("SELECT capture(a, r'a{1001}') FROM Log", ("regular expressions here are RE2: repeat "
     "counts are at most 1000 at line 1, column 19")),
    ("SELECT count(*) FROM Log SINCE 1e400 days ago", ("time out of range (at most about "
     "31,000 years), found '1e400' at line 1, column 32")),
    ("SELECT count(*) FROM Log TIMESERIES 1e300", ("time out of range (at most about 31,000 "
     "years), found '1e300' at line 1, column 37")),
    ("SELECT count(*) FROM `` ", "empty `backtick` name at line 1, column 22"),
    ("SELECT x[``] FROM Log", "empty `backtick` name at line 1, column 10"),
    ("SELECT count(*) FROM Log WHERE a RLIKE 'x('", ("invalid regular expression: missing ), "
     "unterminated subpattern at position 1 at line 1, column 40")),
    ("SELECT count(*) FROM Log TIMESERIES 1 second SINCE 1 day ago",
     ("TIMESERIES would make 86400 buckets over this time range; the most allowed is 366 (use "
     "a wider bucket or TIMESERIES MAX) at line 1, column 26")),
    # Clause errors point at the clause (or the zone string), not at column 1.
    ("FROM Log SELECT count(*) SINCE 1 hour ago UNTIL 2 hours ago",
     "SINCE must be earlier than UNTIL at line 1, column 26"),
    ("FROM Log SELECT count(*) WITH TIMEZONE 'Not/AZone' SINCE today",
     ("unknown time zone 'Not/AZone' (use a name such as 'America/New_York') at line 1, "
      "column 40")),
    ("FROM Log SELECT count(*) SINCE monday AT '25:00'",
     ("AT takes a time of day such as '09:00' or '17:30:15', found string '25:00' at line 1, "
      "column 42")),
    ("FROM Log SELECT count(*) TIMESERIES 1 minute SLIDE BY 1 hour",
     "SLIDE BY must not be longer than the TIMESERIES bucket at line 1, column 46"),
    ("FROM Log SELECT * SINCE 1 day ago TIMESERIES",
     "TIMESERIES needs an aggregate function such as count(*) at line 1, column 35"),
    ("FROM Log SELECT * COMPARE WITH 1 day ago",
     "COMPARE WITH needs an aggregate function such as count(*) at line 1, column 19"),
    (("FROM (FROM Log SELECT count(*) FACET x TIMESERIES 1 second) SELECT sum(count) "
      "SINCE 1 day ago"), ("TIMESERIES would make 86400 buckets over this time range; the most "
                         "allowed is 366 (use a wider bucket or TIMESERIES MAX) at line 1, "
                         "column 40")),
    ("SELECT count(*) FROM Log WHERE a RLIKE r'(a{1000}){1000}'",
     ("regular expressions here are RE2: repeat counts inside one another multiply to at most "
      "1000, found {1000} inside {1000} (1,000,000) at line 1, column 40")),
    ("SELECT capture(x, r'(?P<n>(a{500}){500})') FROM Log",
     ("regular expressions here are RE2: repeat counts inside one another multiply to at most "
      "1000, found {500} inside {500} (250,000) at line 1, column 19")),
    ("SELECT count(*) FROM Log WHERE a RLIKE '(a{2}|(b{3,}x){2}){200}'",
     ("regular expressions here are RE2: repeat counts inside one another multiply to at most "
      "1000, found {200} inside {2} inside {3,} (1,200) at line 1, column 40")),
    ("SELECT histogram(x, 1e307, 500) FROM Log",
     "histogram() buckets must end below 1e308 at line 1, column 8"),
])
def test_errors_name_position_and_token(nrql: str, message: str) -> None:
    from trailguard.nrql import compile_nrql

    with pytest.raises(NrqlError) as raised:
        compile_nrql(nrql, "duckdb", NOW)
    assert str(raised.value) == message


@pytest.mark.parametrize(("nrql", "feature"), [
    ("FROM (FROM Log SELECT count(*) FACET a) SELECT max(count) COMPARE WITH 1 day ago",
     "nested aggregation with COMPARE WITH"),
    ("FROM (FROM Log SELECT a) SELECT count(*)",
     "nested query over events (an inner query that does not aggregate)"),
    ("SELECT count(*) FROM Log TIMESERIES 5 minutes SLIDE BY AUTO", "SLIDE BY AUTO"),
    ("SELECT apdex(duration, t: 0.5) FROM Transaction", "function apdex()"),
    ("SELECT funnel(s, WHERE a = 1 AS 'x', WHERE b = 2 AS 'y') FROM PageView",
     "function funnel()"),
    ("SELECT count(*) FROM Log WITH METRIC_FORMAT 'x'", "WITH METRIC_FORMAT"),
    ("SHOW EVENT TYPES", "SHOW EVENT TYPES"),
])
def test_unsupported_features_are_named(nrql: str, feature: str) -> None:
    from trailguard.nrql import compile_nrql

    with pytest.raises(NrqlUnsupportedError) as raised:
        compile_nrql(nrql, "duckdb", NOW)
    assert raised.value.feature == feature
    assert str(raised.value).startswith(f"not supported: {feature} at line 1")
