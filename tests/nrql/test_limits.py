"""Nesting limits: deep queries fail with a positioned NrqlError (never RecursionError),
and long chains of AND / OR / + stay shallow enough to compile and run on both backends.

Events are `support.synthetic_events`: InfrastructureEvent i = 0..9, bytes = 10 * i.
"""

from __future__ import annotations

from typing import Any

import pytest
from nrql.support import NOW_MS

from trailguard.errors import NrqlError
from trailguard.nrql import compile_nrql, run_nrql
from trailguard.nrql.limits import MAX_DEPTH, MAX_NESTING
from trailguard.nrql.tokens import MAX_TOKENS, tokenize

CT = "FROM InfrastructureEvent SELECT "
WHERE = CT + "count(*) WHERE "


def nesting_error(nrql: str) -> NrqlError:
    with pytest.raises(NrqlError) as caught:
        compile_nrql(nrql, "duckdb", NOW_MS)
    return caught.value


def test_four_thousand_parentheses_name_the_limit_position_and_token() -> None:
    nrql = "FROM Log SELECT count(*) WHERE " + "(" * 4000 + "1=1" + ")" * 4000
    error = nesting_error(nrql)
    position = len("FROM Log SELECT count(*) WHERE ") + MAX_NESTING   # the 41st '('
    assert error.position == position
    assert str(error) == (
        "the query nests too deeply (at most 40 levels of parentheses, function calls, "
        f"CASES, subqueries, NOT or minus signs), found '(' at line 1, column {position + 1}")


@pytest.mark.parametrize("opening, closing, token", [
    ("(", ")", "("),
    ("abs(", ")", "abs"),
    ("cases(WHERE x = ", " AS 'a')", "cases"),
    ("NOT ", "", "NOT"),
    ("- ", "", "-"),
    # The 40th subquery's uniques( is the 41st level.
    ("x IN (FROM Log SELECT uniques(x) WHERE ", ")", "uniques"),
])
def test_every_recursive_construct_is_limited(opening: str, closing: str, token: str) -> None:
    inner = "x = 1" if token in ("(", "NOT", "cases") else "1"
    if token in ("abs", "-"):
        inner = "1 = 1"   # within a condition: abs(abs(... 1 = 1)) still parses that far
    nrql = WHERE + opening * 500 + inner + closing * 500
    error = nesting_error(nrql)
    assert error.reason.startswith("the query nests too deeply (at most 40 levels")
    assert error.reason.endswith(f"found '{token}'")
    assert nrql[error.position:].startswith(token)


def test_nested_aggregation_counts_as_nesting() -> None:
    nrql = "FROM (" * 100 + "FROM Log SELECT count(*)" + ") SELECT count(*)" * 100
    error = nesting_error(nrql)
    assert error.position == len("FROM (") * MAX_NESTING + len("FROM ")
    assert "nests too deeply" in error.reason


def test_a_long_chain_of_minus_is_too_deep_with_position() -> None:
    nrql = CT + "sum(" + " - ".join(["bytes"] * 200) + ")"
    error = nesting_error(nrql)
    assert error.reason.startswith(f"the query is too deep (at most {MAX_DEPTH} operators")
    assert error.reason.endswith("found '-'")
    assert nrql[error.position] == "-"


def test_the_deepest_allowed_nesting_compiles() -> None:
    depth = MAX_NESTING
    compile_nrql(WHERE + "(" * depth + "bytes = 1" + ")" * depth, "duckdb", NOW_MS)
    compile_nrql(WHERE + "NOT " * depth + "bytes = 1", "clickhouse", NOW_MS)
    compile_nrql(CT + "sum(" + "abs(" * (depth - 1) + "bytes" + ")" * (depth - 1) + ")",
                 "duckdb", NOW_MS)


@pytest.mark.parametrize("nrql, expected", [
    # 1,500 terms (within MAX_TOKENS): all true (bytes >= 0) for AND, one true for OR,
    # 10 * 1,500 for +.
    (WHERE + " AND ".join(["bytes >= 0"] * 1500), {"count": 10}),
    (WHERE + " OR ".join(["bytes = -1"] * 1499 + ["bytes = 90"]), {"count": 1}),
    (WHERE + " ".join(["bytes >= 0"] * 1500), {"count": 10}),    # side by side: AND
    (WHERE + " WHERE ".join(["bytes >= 0"] * 1500), {"count": 10}),  # repeated WHERE
    (CT + "sum(" + " + ".join(["bytes"] * 1500) + ")" + " AS 'v'", {"v": 450 * 1500}),
    (CT + "max(" + " * ".join(["1"] * 1500 + ["bytes"]) + ")" + " AS 'v'", {"v": 90}),
])
def test_long_term_chains_run_on_duckdb(duck_synthetic: Any, nrql: str,
                                                 expected: dict[str, Any]) -> None:
    assert run_nrql(duck_synthetic, nrql, NOW_MS)["results"] == [expected]


@pytest.mark.parametrize("nrql, expected", [
    (WHERE + " AND ".join(["bytes >= 0"] * 500), {"count": 10}),
    (WHERE + " OR ".join(["bytes = -1"] * 499 + ["bytes = 90"]), {"count": 1}),
    (CT + "sum(" + " + ".join(["bytes"] * 500) + ") AS 'v'", {"v": 450 * 500}),
    (WHERE + "(" * MAX_NESTING + "bytes = 90" + ")" * MAX_NESTING, {"count": 1}),
    (WHERE + "NOT " * MAX_NESTING + "bytes = 90", {"count": 1}),     # an even number
])
def test_long_chains_and_deep_nesting_run_on_both_backends(
        synthetic: Any, nrql: str, expected: dict[str, Any]) -> None:
    assert run_nrql(synthetic, nrql, NOW_MS)["results"] == [expected]


def test_a_value_or_chain_is_still_the_first_value(synthetic: Any) -> None:
    # Four values are regrouped (a OR b) OR (c OR d): still the first that has a value.
    # (Values of different kinds are compiled again as text; the first attempt's
    # parameters used to be left bound, which DuckDB refused.)
    for chain in ("errorMessage OR errorCode OR requestID OR 'none'",
                  "((errorMessage OR errorCode) OR requestID) OR 'none'"):
        nrql = CT + f"latest({chain}) AS 'v'"
        assert run_nrql(synthetic, nrql, NOW_MS)["results"] == [{"v": "Req-09"}]


@pytest.mark.parametrize("nrql, rows", [
    (CT + "eventName LIMIT 100000", 10),
    (CT + "count(*) FACET eventName LIMIT 100000", 5),
])
def test_a_limit_above_max_is_lowered_with_a_message(duck_synthetic: Any, nrql: str,
                                                     rows: int) -> None:
    answer = run_nrql(duck_synthetic, nrql, NOW_MS)
    assert len(answer["results"]) == rows
    assert answer["metadata"]["messages"] == [
        "LIMIT 100000 was lowered to 5000, the most a query returns (LIMIT MAX)"]


@pytest.mark.parametrize("tail", ["LIMIT 5000", "LIMIT MAX", "LIMIT 3", ""])
def test_a_limit_within_max_adds_no_message(duck_synthetic: Any, tail: str) -> None:
    answer = run_nrql(duck_synthetic, CT + "eventName " + tail, NOW_MS)
    assert answer["metadata"]["messages"] == []


def test_a_query_past_the_token_limit_is_refused_where_it_crosses_it() -> None:
    nrql = WHERE + " AND ".join(["bytes >= 0"] * 3000)
    with pytest.raises(NrqlError, match="longer than 10,000 tokens") as caught:
        compile_nrql(nrql, "duckdb", NOW_MS)
    # It points at the 10,001st token: 10,000 tokens (and the end marker) come before it.
    assert len(tokenize(nrql[:caught.value.position])) == MAX_TOKENS + 1
