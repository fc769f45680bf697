"""NRQL query time next to hand-written SQL for the same question, per query shape.

    .venv/bin/python bench/query.py                  # 1M events, well under a minute
    .venv/bin/python bench/query.py --events 10000000  # ~20 s to generate, ~2 min in all

Generates CloudTrail-like events straight into a DuckDB file with the store's schema
(hot columns plus the JSON `attrs` column) in one INSERT ... SELECT over range(n), so
10M events take seconds rather than the hours row-by-row writes would. Then times each
shape through `run_nrql` (parse, compile, execute, shape the result) and through SQL
written by hand the way a person would for that question. NRQL and SQL runs alternate,
so load from other processes hits both alike; prints the best of each and their ratio.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from trailguard.nrql import run_nrql
from trailguard.store.duckdb_store import DATABASE_FILE, DuckDBStore
from trailguard.store.schema import create_statements

NOW_MS = 1_700_000_000_000
DAY_MS = 86_400_000
WINDOW = "event_type = 'InfrastructureEvent' AND timestamp >= {b} AND timestamp < {e}"

# (shape, NRQL, hand-written SQL); {b} {e} are the window, one day before NOW_MS.
SHAPES = [
    ("count", "FROM InfrastructureEvent SELECT count(*) SINCE 1 day ago",
     "SELECT count(*) FROM events WHERE " + WINDOW),
    ("FACET", "FROM InfrastructureEvent SELECT count(*) FACET eventName SINCE 1 day ago",
     "SELECT a_eventname, count(*) AS c FROM events WHERE " + WINDOW
     + " GROUP BY 1 ORDER BY c DESC LIMIT 10"),
    ("TIMESERIES", "FROM InfrastructureEvent SELECT count(*) SINCE 1 day ago TIMESERIES",
     "SELECT (timestamp - {b}) // 1800000 AS bucket, count(*) FROM events WHERE " + WINDOW
     + " GROUP BY 1 ORDER BY 1"),
    ("FACET+TIMESERIES",
     "FROM InfrastructureEvent SELECT count(*) FACET awsRegion SINCE 1 day ago TIMESERIES",
     "WITH top AS (SELECT a_awsregion FROM events WHERE " + WINDOW
     + " GROUP BY 1 ORDER BY count(*) DESC LIMIT 10) SELECT a_awsregion, (timestamp - {b}) "
     "// 1800000 AS bucket, count(*) FROM events WHERE " + WINDOW
     + " AND a_awsregion IN (SELECT a_awsregion FROM top) GROUP BY 1, 2 ORDER BY 1, 2"),
    ("uniqueCount", ("FROM InfrastructureEvent SELECT uniqueCount(sourceIPAddress) "
                    "SINCE 1 day ago"),
     "SELECT count(DISTINCT a_sourceipaddress) FROM events WHERE " + WINDOW),
    ("percentile (JSON attr)", ("FROM InfrastructureEvent SELECT percentile(bytes, 95) "
                               "SINCE 1 day ago"),
     "SELECT quantile_cont(TRY_CAST(json_extract_string(attrs, '$.bytes') AS DOUBLE), 0.95) "
     "FROM events WHERE " + WINDOW),
    ("LIKE filter", ("FROM InfrastructureEvent SELECT count(*) WHERE eventName LIKE '%object%' "
                    "SINCE 1 day ago"),
     "SELECT count(*) FROM events WHERE " + WINDOW + " AND a_eventname ILIKE '%object%'"),
]


def generate(directory: Path, events: int) -> None:
    """`events` rows over the day before NOW_MS, written by DuckDB itself (fast)."""
    store = DuckDBStore(directory)
    store.close()
    import duckdb

    connection = duckdb.connect(str(directory / DATABASE_FILE))
    connection.execute("SET enable_progress_bar = false")
    for statement in create_statements():
        connection.execute(statement)
    names = ["GetObject", "PutObject", "ConsoleLogin", "AssumeRole", "DescribeInstances",
             "ListBuckets", "CreateUser", "DeleteTrail", "StopLogging", "AttachUserPolicy",
             "GetCallerIdentity", "Decrypt"]
    regions = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1",
               "ap-northeast-1", "sa-east-1", "ca-central-1", "us-east-2", "eu-north-1",
               "af-south-1", "me-south-1"]
    connection.execute(f"""
        INSERT INTO events (event_type, timestamp, a_provider, a_eventname,
                            a_awsregion, a_sourceipaddress, a_errorcode, attrs)
        SELECT 'InfrastructureEvent', {NOW_MS} - 1 - (i * 7919) % {DAY_MS}, 'CloudTrail',
               ({names!r})[1 + (i * 31) % {len(names)}],
               ({regions!r})[1 + ((i * 17) % 97) % {len(regions)}],
               '198.51.' || ((i * 13) % 256) || '.' || ((i * 7) % 200),
               CASE WHEN i % 23 = 0 THEN 'AccessDenied' END,
               json_object('bytes', (i * 37) % 10000, 'userAgent', 'aws-cli/2')
        FROM range({events}) AS r(i)
    """)
    connection.close()


def best_of(runs: int, *actions: Callable[[], object]) -> list[float]:
    """The fastest of `runs` runs of each action; the actions take turns."""
    timings: list[list[float]] = [[] for _ in actions]
    for _ in range(runs):
        for action, taken in zip(actions, timings):
            start = time.perf_counter()
            action()
            taken.append(time.perf_counter() - start)
    return [min(taken) for taken in timings]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="trailguard-bench-") as folder:
        started = time.perf_counter()
        generate(Path(folder), args.events)
        print(f"generated {args.events:,} events in {time.perf_counter() - started:.1f}s")
        store = DuckDBStore(Path(folder), read_only=True)
        begin, end = NOW_MS - DAY_MS, NOW_MS
        print(f"{'shape':<24}{'NRQL ms':>10}{'SQL ms':>10}{'ratio':>8}")
        for shape, nrql, sql in SHAPES:
            hand_sql = sql.format(b=begin, e=end)
            run_nrql(store, nrql, NOW_MS)   # warm caches for both
            nrql_s, sql_s = best_of(args.runs,
                                    lambda text=nrql: run_nrql(store, text, NOW_MS),
                                    lambda text=hand_sql: store.read(text, {}))
            print(f"{shape:<24}{nrql_s * 1000:>10.1f}{sql_s * 1000:>10.1f}"
                  f"{nrql_s / sql_s:>8.2f}")
        store.close()


if __name__ == "__main__":
    main()
