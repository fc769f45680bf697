"""Attribute names with quotes, backslashes, brackets and other odd characters.

A real event goes in through the Firehose endpoint and is queried back through the
NRQL API (and, from the same store, on ClickHouse): every backticked name either
answers or gives a 400 with the position, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ingest_hostile import FIREHOSE_KEY, T0, envelope, firehose_headers
from nrql.support import ChdbStore
from starlette.testclient import TestClient

from trailguard.config import Config
from trailguard.nrql import run_nrql
from trailguard.store import DuckDBStore
from trailguard.web.app import create_app

# Flattened attribute name -> the value stored under it.
ODD = {
    'we"ird': "double quote", "back\\slash": "backslash", "quo'te": "single quote",
    "sp ace": "space", "dollar$": "dollar", "$.x": "json path", "brack[0]": "brackets",
    'x"]': "quote bracket", "star*": "star", "ünï": "unicode", "tab\tx": "tab",
    "%_": "like wildcards", 'nested.in"ner': "nested quote",
}
DOCUMENT = {**{name: value for name, value in ODD.items() if not name.startswith("nested.")},
            "nested": {'in"ner': "nested quote"}, "logtype": "odd-names"}
SINCE = f" SINCE {T0 - 3_600_000} UNTIL {T0 + 3_600_000}"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir: Path = tmp_path_factory.mktemp("odd_names")
    store = DuckDBStore(data_dir)
    config = Config(data_dir=data_dir, firehose_access_key=FIREHOSE_KEY, api_key="api")
    with TestClient(create_app(config, store), raise_server_exceptions=False) as test_client:
        body = envelope(json.dumps(DOCUMENT).encode(), request_id="odd-names")
        stored = test_client.post("/firehose/v1", content=body,
                                  headers=firehose_headers("odd-names"))
        assert stored.status_code == 200, stored.text
        test_client.app_store = store   # type: ignore[attr-defined]
        yield test_client
    store.close()


def query(client: TestClient, nrql: str) -> Any:
    return client.post("/api/v1/nrql", json={"query": nrql}, headers={"X-Api-Key": "api"})


def quoted(name: str) -> str:
    return "`" + name + "`"


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_name_is_selected_filtered_and_faceted(client: TestClient, name: str) -> None:
    value = ODD[name]
    nrql = (f"FROM Log SELECT latest({quoted(name)}), count(*) WHERE {quoted(name)} = '{value}'"
            f" AND {quoted(name)} LIKE '%{value[-3:]}' AND {quoted(name)} IS NOT NULL"
            f" FACET {quoted(name)}{SINCE}")
    response = query(client, nrql)
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [
        {"facet": value, name: value, f"latest.{name}": value, "count": 1}]


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_name_is_the_same_on_clickhouse(client: TestClient, tmp_path: Path,
                                            name: str) -> None:
    pytest.importorskip("chdb", reason="chdb (the ClickHouse engine) is in the test extra")
    nrql = f"FROM Log SELECT uniques({quoted(name)}), count({quoted(name)}){SINCE}"
    store: DuckDBStore = client.app_store   # type: ignore[attr-defined]
    clickhouse = ChdbStore(store, tmp_path)
    try:
        expected = [{f"uniques.{name}": [ODD[name]], f"count.{name}": 1}]
        assert run_nrql(store, nrql)["results"] == expected
        assert run_nrql(clickhouse, nrql)["results"] == expected
    finally:
        clickhouse.close()


def test_listed_events_carry_odd_names(client: TestClient) -> None:
    response = query(client, f"FROM Log SELECT {quoted(chr(34).join('ab'))}, `we\"ird`{SINCE}")
    assert response.status_code == 200, response.text
    row = response.json()["results"][0]
    assert row['we"ird'] == "double quote" and row['a"b'] is None


@pytest.mark.parametrize(("nrql", "reason", "column"), [
    ("FROM Log SELECT ``", "empty `backtick` name", 17),
    ("FROM Log SELECT count(*) FACET `we\"ird", "unterminated `backtick` name", 32),
    ("FROM Log SELECT count(*) WHERE `` = 'x'", "empty `backtick` name", 32),
])
def test_bad_backticks_are_a_400_with_the_position(client: TestClient, nrql: str, reason: str,
                                                   column: int) -> None:
    response = query(client, nrql)
    assert response.status_code == 400
    assert response.json() == {"error": f"{reason} at line 1, column {column}",
                               "position": column - 1}
