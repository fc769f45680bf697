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
