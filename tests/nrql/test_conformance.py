"""Every query of the New Relic quickstarts corpus (../shared/nrql/corpus.jsonl).

Each one either compiles, or fails with `NrqlUnsupportedError` naming a feature
on the documented list below (docs/nrql.md), or is one of a few queries that
are not valid NRQL at all. Every query over Log and InfrastructureEvent (the
event types trailguard stores) runs on DuckDB and on ClickHouse with equal
results. Percentages are printed (run with -s to see them).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from nrql.support import NOW_MS, corpus, fill_variables

from trailguard.errors import NrqlError, NrqlUnsupportedError
from trailguard.nrql import compile_nrql, parse, run_nrql

# Features trailguard does not implement; docs/nrql.md says why for each.
UNSUPPORTED = {
    "nested aggregation with COMPARE WITH", "nested aggregation with SLIDE BY",
    "nested aggregation with a nested query inside a nested query",
    "listing the rows of a nested query (aggregate them)", "SLIDE BY AUTO", "SLIDE BY MAX",
    "SLIDE BY with COMPARE WITH", "WITH METRIC_FORMAT",
    "WITH ... AS (NRQL variables)", "RAW (metric data points)", "FACET on a constant",
    "FACET ... ORDER BY other than a descending aggregate", "JOIN", "SHOW EVENT TYPES",
}
UNSUPPORTED_FUNCTIONS = {
    "apdex", "cardinality", "tuple", "conditional", "funnel", "aggregationendtime",
    "histogrampercentile", "bucketpercentile", "clamp_min", "dimensions", "irate", "idelta",
    "buckets", "ifthen", "datapointcount",
}
# The shipped queries that are not NRQL (New Relic rejects them too), each with the whole
# error trailguard gives: what is wrong, and where.
INVALID_QUERIES = {
    # An alert condition's query without its `SELECT` and `FROM`.
    ("average(kentik.snmp.IfOutUtilization) FACET device_name, if_interface_name, if_Alias "
     "WHERE metricName = 'kentik.snmp.IfOutUtilization' AND entity.type in ('ROUTER','SWITCH') "
     "and if_Type like 'ethernetcsmacd'"):
        ("a query starts with SELECT ... FROM ... or FROM ... SELECT ..., found 'average' at "
         "line 1, column 1"),
    # A label in typographic quotes (pasted from a word processor).
    ("FROM Metric SELECT count(newrelic.goldenmetrics.apm.application.errorRate) AS "
     "‘Application Error Rate’"): "unexpected character '‘' at line 1, column 79",
    # A WHERE with no condition after it.
    "FROM Log SELECT * where":
        "expected a value, an attribute or a function, found end of query at line 1, column 24",
}
INVALID = Counter(message.split(", found")[0].split(" at line")[0]
                  for message in INVALID_QUERIES.values())
SECURITY_TYPES = {"Log", "InfrastructureEvent"}


def outcome(nrql: str) -> str:
    try:
        compile_nrql(nrql, "duckdb", NOW_MS)
    except NrqlUnsupportedError as error:
        return "unsupported:" + error.feature
    except NrqlError as error:
        return "invalid:" + error.reason.split(", found")[0]
    return "ok"


def allowed(result: str) -> bool:
    if result == "ok":
        return True
    kind, _, detail = result.partition(":")
    if kind == "unsupported":
        function = re.fullmatch(r"function (\w+)\(\)", detail)
        return detail in UNSUPPORTED or bool(
            function and function.group(1).lower() in UNSUPPORTED_FUNCTIONS)
    return False


def test_every_corpus_query_compiles_or_is_a_documented_gap() -> None:
    queries = corpus()
    outcomes = [outcome(fill_variables(query["nrql"])) for query in queries]
    invalid = Counter(result[len("invalid:"):] for result in outcomes
                      if result.startswith("invalid:"))
    surprising = [(query["nrql"], result) for query, result in zip(queries, outcomes)
                  if not allowed(result) and not result.startswith("invalid:")]
    assert surprising == []
    assert dict(invalid) == INVALID

    parsed = sum(1 for query in queries if _parses(fill_variables(query["nrql"])))
    compiled = outcomes.count("ok")
    security = [result for query, result in zip(queries, outcomes) if query.get("security")]
    unsupported = sum(result.startswith("unsupported") for result in outcomes)
    total = len(queries)
    print(f"\ncorpus: {total} queries; parsed {100 * parsed / total:.1f}%, "
          f"compiled {100 * compiled / total:.1f}%, unsupported {100 * unsupported / total:.1f}%"
          f", invalid {100 * sum(invalid.values()) / total:.2f}%; "
          f"security subset compiled {100 * security.count('ok') / len(security):.1f}%")
    assert security.count("ok") == len(security) == 92


def _parses(nrql: str) -> bool:
    try:
        parse(nrql)
    except NrqlUnsupportedError:
        return False
    except NrqlError:
        return False
    return True


def _store_queries() -> list[str]:
    return [fill_variables(query["nrql"]) for query in corpus()
            if set(query["event_types"]) & SECURITY_TYPES]


def test_every_log_and_infrastructure_query_runs_on_both_backends(
        samples_store: Any, chdb_samples: Any) -> None:
    ran, queries = 0, _store_queries()
    for nrql in queries:
        try:
            on_duckdb = run_nrql(samples_store, nrql, NOW_MS)
        except NrqlUnsupportedError as error:
            assert allowed("unsupported:" + error.feature), nrql
            continue
        except NrqlError as error:
            assert error.reason.split(", found")[0] in INVALID, nrql
            continue
        assert run_nrql(chdb_samples, nrql, NOW_MS) == on_duckdb, nrql
        ran += 1
    print(f"\n{ran} of {len(queries)} Log/InfrastructureEvent corpus queries ran on DuckDB "
          "and chdb alike")
    assert (ran, len(queries)) == (518, 519)   # the other one is `FROM Log SELECT * where`


@pytest.mark.parametrize("nrql", sorted(INVALID_QUERIES))
def test_invalid_corpus_queries_fail_with_a_positioned_error(nrql: str) -> None:
    assert nrql in {query["nrql"] for query in corpus()}
    with pytest.raises(NrqlError) as raised:
        compile_nrql(nrql, "duckdb", NOW_MS)
    assert not isinstance(raised.value, NrqlUnsupportedError)
    assert str(raised.value) == INVALID_QUERIES[nrql]
    assert raised.value.position is not None


@pytest.mark.parametrize("nrql", [
    ("SELECT COUNT(*) FROM InfrastructureEvent WHERE provider='CloudTrail' (errorCode IS NOT "
     "NULL OR errorMessage IS NOT NULL) FACET eventName SINCE 1 WEEK AGO TIMESERIES AUTO"),
    ("SELECT COUNT(*) FROM InfrastructureEvent WHERE provider='CloudTrail' eventName = "
     "'ConsoleLogin' FACET CASES (WHERE errorMessage IS NULL AS 'Successful login', WHERE "
     "errorMessage IS NOT NULL as 'Failed login') SINCE 1 WEEK AGO TIMESERIES AUTO"),
])
def test_cloudtrail_dashboard_widgets_answer_from_samples(samples_store: Any, nrql: str) -> None:
    # The sample events are from 2015-2024; widen the window to include them.
    rows = run_nrql(samples_store, nrql.replace("1 WEEK AGO", "20 years ago"), NOW_MS)["results"]
    assert sum(row["count"] for row in rows) > 0
