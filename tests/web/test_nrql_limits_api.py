"""`POST /api/v1/nrql` with pathologically deep queries: a 400 naming the position, not a
500 from a RecursionError; long chains within the limits are answered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from trailguard.config import Config
from trailguard.events import LOG, Event
from trailguard.store import DuckDBStore
from trailguard.web.app import create_app

API_KEY = "nrql-limits-api-key-0123"
WHERE = "FROM Log SELECT count(*) WHERE "


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = DuckDBStore(tmp_path)
    now = int(time.time() * 1000)
    store.write([Event(LOG, now - 60_000, {"message": "one", "n": 1}, "k:one")])
    config = Config(data_dir=tmp_path, firehose_access_key="f" * 16, api_key=API_KEY,
                    ingest_decode_workers=0)
    try:
        with TestClient(create_app(config, store)) as test_client:
            yield test_client
    finally:
        store.close()


def ask(client: TestClient, nrql: str) -> tuple[int, dict]:
    answer = client.post("/api/v1/nrql", json={"query": nrql}, headers={"X-Api-Key": API_KEY})
    return answer.status_code, answer.json()


def test_four_thousand_parentheses_are_a_400_with_the_position(client: TestClient) -> None:
    status, body = ask(client, WHERE + "(" * 4000 + "1=1" + ")" * 4000)
    assert status == 400
    assert body["position"] == len(WHERE) + 40
    assert body["error"] == (
        "the query nests too deeply (at most 40 levels of parentheses, function calls, "
        f"CASES, subqueries, NOT or minus signs), found '(' at line 1, column {len(WHERE) + 41}")


def test_a_long_or_chain_is_answered(client: TestClient) -> None:
    status, body = ask(client, WHERE + " OR ".join(["n = 0"] * 1999 + ["n = 1"]))
    assert status == 200
    assert body["results"] == [{"count": 1}]


def test_rate_is_a_json_number(client: TestClient) -> None:
    status, body = ask(client, "FROM Log SELECT rate(count(*), 1 minute) SINCE 2 minutes ago")
    assert status == 200
    assert body["results"] == [{"rate": 0.5}]


def test_a_regex_the_backend_refuses_is_a_400(client: TestClient) -> None:
    status, body = ask(client, "FROM Log SELECT count(*) WHERE message RLIKE r'(a{1000}){1000}'")
    assert status == 400
    assert body["position"] == len("FROM Log SELECT count(*) WHERE message RLIKE ")
    # A pattern from event data is only known to the backend: still a 400, not a 500.
    status, body = ask(client, "FROM Log SELECT count(*) WHERE message RLIKE concat('(', "
                       "message, '{1000}){1000}')")
    assert status == 400
    assert body["error"].startswith("the query cannot run on this data: ")


def test_an_oversized_body_names_the_limit(client: TestClient) -> None:
    query = "FROM Log SELECT count(*) WHERE message = '" + "x" * (1024 * 1024) + "'"
    answer = client.post("/api/v1/nrql", json={"query": query}, headers={"X-Api-Key": API_KEY})
    assert answer.status_code == 413
    assert answer.json() == {
        "error": "request body too large: /api/v1/nrql accepts at most 1 MiB (1,048,576 bytes) "
                 "of JSON", "limit_bytes": 1_048_576}


def test_a_query_past_the_store_memory_limit_is_a_422_that_names_the_setting(
        tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path, memory_limit="8MB")
    now = int(time.time() * 1000)
    store.write([Event(LOG, now - n, {"message": f"{n:06d}" + "x" * 2_000}, None)
                 for n in range(20_000)])
    config = Config(data_dir=tmp_path, firehose_access_key="f" * 16, api_key=API_KEY,
                    ingest_decode_workers=0)
    try:
        with TestClient(create_app(config, store)) as test_client:
            status, body = ask(test_client, "SELECT uniques(message, 5000) FROM Log "
                                            "SINCE 1 day ago")
            still_answers = ask(test_client, "SELECT count(*) FROM Log SINCE 1 day ago")
    finally:
        store.close()

    assert status == 422  # not 503: retrying the same query will not help
    assert "store_memory_limit" in body["error"] and "Out of Memory" in body["error"]
    assert still_answers == (200, still_answers[1])
    assert still_answers[1]["results"][0]["count"] == 20_000


def test_a_faceted_timeseries_too_big_to_return_is_a_400(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path)
    now = int(time.time() * 1000)
    store.write([Event(LOG, now - n * 1_000, {"message": "m", "uid": f"u{n}"}, None)
                 for n in range(1_200)])
    config = Config(data_dir=tmp_path, firehose_access_key="f" * 16, api_key=API_KEY,
                    ingest_decode_workers=0)
    try:
        with TestClient(create_app(config, store)) as test_client:
            too_big = ask(test_client, "SELECT count(*) FROM Log FACET uid SINCE 1 week ago "
                                       "TIMESERIES 1 hour LIMIT MAX")
            fits = ask(test_client, "SELECT count(*) FROM Log FACET uid SINCE 1 day ago "
                                    "TIMESERIES 1 hour LIMIT 100")
    finally:
        store.close()

    # 1,200 facets x 168 hourly buckets = 201,600 rows, past the 200,000 allowed.
    assert too_big[0] == 400
    assert too_big[1]["error"].startswith("the query would return 1,200 series of 168 ")
    assert fits[0] == 200 and len(fits[1]["results"]) == 100 * 24
