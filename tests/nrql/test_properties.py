"""Property tests: whatever the text, NRQL fails only with `NrqlError`, and the SQL it
becomes reads no table but `events` and carries user text only as parameters."""

from __future__ import annotations

from typing import Any

import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from trailguard.errors import NrqlError
from trailguard.nrql import compile_nrql, run_nrql

NOW = 1_700_000_000_000
WORDS = ["SELECT", "FROM", "WHERE", "FACET", "CASES", "SINCE", "UNTIL", "TIMESERIES", "LIMIT",
         "COMPARE", "WITH", "AGO", "AUTO", "MAX", "AND", "OR", "NOT", "IN", "LIKE", "RLIKE", "IS",
         "NULL", "TRUE", "AS", "OFFSET", "ORDER", "BY", "SLIDE", "TIMEZONE", "Log", "count",
         "uniqueCount", "latest", "percentile", "filter", "events", "x", "1", "5", "minutes",
         "(", ")", ",", "*", "=", "!=", "<", "'a'", "`b.c`", "{{v}}", "r'.*'", "'", "--", "[",
         "]", ":", "-", "/", "DROP TABLE events", ";"]

attributes = st.sampled_from(["eventName", "awsRegion", "`detail.type`", "errorCode",
                              "bytes", "x.y.z", "`we'ird ; DROP`"])
strings = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                  max_size=12).map(lambda s: "'" + s.replace("\\", "\\\\").replace("'", "\\'")
                                   + "'")
numbers = st.integers(min_value=-10**6, max_value=10**6).map(str)
values = st.one_of(strings, numbers)
conditions = st.one_of(
    st.builds(lambda a, v: f"{a} = {v}", attributes, values),
    st.builds(lambda a, v: f"{a} LIKE {v}", attributes, strings),
    st.builds(lambda a, v: f"{a} NOT RLIKE {v}", attributes, strings),
    st.builds(lambda a, vs: f"{a} IN ({', '.join(vs)})", attributes,
              st.lists(values, min_size=1, max_size=3)),
    st.builds(lambda a: f"{a} IS NOT NULL", attributes),
    st.builds(lambda a: f"{a} IS TRUE", attributes),
    st.builds(lambda a, v: f"{a} IN (FROM Log SELECT uniques({v}))", attributes, attributes),
)
aggregates = st.one_of(
    st.just("count(*)"),
    st.builds(lambda a: f"uniqueCount({a})", attributes),
    st.builds(lambda a: f"latest({a})", attributes),
    st.builds(lambda a: f"sum({a}) / 2", attributes),
    st.builds(lambda a, c: f"percentage(count(*), WHERE {c})", attributes, conditions),
    st.builds(lambda a: f"percentile({a}, 50, 99)", attributes),
    st.builds(lambda a: f"uniques({a})", attributes),
    st.builds(lambda a: f"histogram({a}, 10, 5)", attributes),
)
tails = st.sampled_from(["", " TIMESERIES", " TIMESERIES 5 minutes", " SINCE 1 day ago",
                         " COMPARE WITH 1 day ago", " LIMIT MAX", " SINCE today",
                         " SINCE 2 hours ago UNTIL 1 hour ago TIMESERIES MAX",
                         " TIMESERIES 10 minutes SLIDE BY 5 minutes"])


@st.composite
def queries(draw: st.DrawFn) -> str:
    select = ", ".join(draw(st.lists(aggregates, min_size=1, max_size=3)))
    query = f"FROM Log SELECT {select}"
    for condition in draw(st.lists(conditions, max_size=2)):
        query += f" WHERE {condition}"
    facets = draw(st.lists(attributes, max_size=2))
    if facets:
        query += " FACET " + ", ".join(facets)
    elif draw(st.booleans()):
        case = draw(conditions)
        query += f" FACET CASES (WHERE {case} AS 'one')"
    query += draw(tails)
    if draw(st.booleans()):
        # Nested aggregation over the generated query, reading one of its result keys.
        outer = draw(st.sampled_from(["count(*)", "sum(count)", "max(`uniqueCount.eventName`)",
                                      "latest(facet)"]))
        query = f"FROM ({query}) SELECT {outer}" + draw(st.sampled_from(["", " TIMESERIES"]))
    return query


def tables_read(sql: str, dialect: str) -> set[str]:
    tree = sqlglot.parse_one(sql, read=dialect)
    named = {cte.alias for cte in tree.find_all(exp.CTE)}
    return {table.name for table in tree.find_all(exp.Table)} - named


def literal_strings(sql: str, dialect: str) -> set[str]:
    return {node.this for node in sqlglot.parse_one(sql, read=dialect).find_all(exp.Literal)
            if node.is_string}


# Strings the compiler itself writes (labels, JSON type names, format strings, escapes).
GENERATED_STRINGS = {"current", "previous", "\\", "Float64", "String", "UTC", "true", "false",
                     "1", "0", "", "^(?:", ")$", "%Y-%m-%d", "%H:00"}

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


@SETTINGS
@given(st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join))
def test_token_soup_raises_only_nrql_errors(text: str) -> None:
    try:
        compile_nrql(text, "duckdb", NOW)
    except NrqlError:
        pass


@SETTINGS
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_nrql_errors(text: str) -> None:
    try:
        compile_nrql(text, "duckdb", NOW)
    except NrqlError as error:
        assert error.position is None or 0 <= error.position <= len(text)


@SETTINGS
@given(queries(), st.sampled_from(["duckdb", "clickhouse"]))
def test_generated_queries_read_only_events_and_bind_user_text(nrql: str, dialect: str) -> None:
    try:
        compiled = compile_nrql(nrql, dialect, NOW)
    except NrqlError:
        return
    assert tables_read(compiled.sql, dialect) == {"events"}
    assert literal_strings(compiled.sql, dialect) <= GENERATED_STRINGS
    assert "DROP" not in compiled.sql


@SETTINGS
@given(st.one_of(queries(), st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join)))
def test_generated_queries_run_or_raise_nrql_errors(synthetic: Any, nrql: str) -> None:
    # Regex patterns, types and time ranges are checked when compiling, so neither
    # backend rejects a statement NRQL produced.
    try:
        answer = run_nrql(synthetic, nrql.replace("FROM Log", "FROM InfrastructureEvent"),
                          NOW)
    except NrqlError:
        return
    assert isinstance(answer["results"], list)


# Deep nesting and long chains: the limits answer with a positioned NrqlError, never a
# RecursionError, and whatever is within them compiles to SQL that reads only `events`.
WRAPPERS = st.sampled_from([("(", ")"), ("abs(", ")"), ("NOT ", ""), ("- ", ""),
                            ("if(x = 1, ", ", 0)"), ("cases(WHERE x = ", " AS 'a')"),
                            ("x IN (FROM Log SELECT uniques(x) WHERE ", ")"),
                            ("filter(", ", WHERE x = 1)"), ("concat(", ", 'a')")])
CHAIN_OPERATORS = st.sampled_from([" AND ", " OR ", " ", " + ", " - ", " * ", " / ", " % "])


@st.composite
def deep_queries(draw: st.DrawFn) -> str:
    layers = draw(st.lists(st.tuples(WRAPPERS, st.integers(1, 60)), min_size=1, max_size=4))
    core = draw(st.sampled_from(["x = 1", "1", "count(*)", "x"]))
    for (opening, closing), times in layers:
        core = opening * times + core + closing * times
    head = draw(st.sampled_from(["FROM Log SELECT count(*) WHERE ", "FROM Log SELECT ",
                                 "FROM (FROM Log SELECT count(*) FACET x) SELECT ",
                                 "FROM Log SELECT count(*) FACET "]))
    return head + core


@st.composite
def long_chains(draw: st.DrawFn) -> str:
    operator = draw(CHAIN_OPERATORS)
    term = draw(st.sampled_from(["x = 1", "x", "1", "(x = 1 OR y = 2)", "latest(x)"]))
    terms = draw(st.integers(1, 3000))
    head = draw(st.sampled_from(["FROM Log SELECT count(*) WHERE ", "FROM Log SELECT sum(",
                                 "FROM Log SELECT "]))
    return head + operator.join([term] * terms) + (")" if head.endswith("(") else "")


DEEP_SETTINGS = settings(max_examples=120, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow])


@DEEP_SETTINGS
@given(st.one_of(deep_queries(), long_chains()), st.sampled_from(["duckdb", "clickhouse"]))
def test_deep_nesting_and_long_chains_raise_only_positioned_nrql_errors(
        nrql: str, dialect: str) -> None:
    try:
        compiled = compile_nrql(nrql, dialect, NOW)
    except NrqlError as error:
        assert error.position is not None and 0 <= error.position <= len(nrql)
        return
    assert "events" in compiled.sql and "DROP" not in compiled.sql
