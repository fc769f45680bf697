"""Fixtures for the NRQL tests: sample stores on DuckDB and on ClickHouse (chdb)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from nrql.support import ChdbStore, make_store, sample_events, synthetic_events

from trailguard.store.duckdb_store import DuckDBStore


@pytest.fixture(scope="session")
def samples_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    store = make_store(tmp_path_factory.mktemp("samples"), sample_events())
    yield store
    store.close()


@pytest.fixture(scope="session")
def chdb_samples(samples_store: DuckDBStore,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbStore]:
    pytest.importorskip("chdb", reason="chdb (the ClickHouse engine) is in the test extra")
    store = ChdbStore(samples_store, tmp_path_factory.mktemp("chdb"))
    yield store
    store.close()


@pytest.fixture(scope="session")
def duck_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    store = make_store(tmp_path_factory.mktemp("synthetic"), synthetic_events())
    yield store
    store.close()


@pytest.fixture(scope="session", params=["duckdb", "clickhouse"])
def synthetic(request: pytest.FixtureRequest, duck_synthetic: DuckDBStore,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The synthetic events on each backend: every semantic test runs on both."""
    if request.param == "duckdb":
        yield duck_synthetic
        return
    pytest.importorskip("chdb", reason="chdb (the ClickHouse engine) is in the test extra")
    store = ChdbStore(duck_synthetic, tmp_path_factory.mktemp("chdb_synthetic"))
    yield store
    store.close()
