"""Helpers for the NRQL tests: the shared corpus, sample events and a chdb-backed store."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from trailguard.events import Event
from trailguard.store.base import QueryResult
from trailguard.store.duckdb_store import DuckDBStore
from trailguard.store.schema import ATTRS_COLUMN, BASE_COLUMNS, DEDUP_COLUMN, HOT_COLUMNS, TABLE

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
NOW_MS = 1_700_000_000_000   # 2023-11-14T22:13:20Z, the clock every test query runs at
MINUTE = 60_000


def shared_path(*parts: str) -> Path:
    """A file under ../shared (beside the repo); skips the test when the shared folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared corpus/samples sit beside the repo)")
    return path


def corpus() -> list[dict[str, Any]]:
    path = shared_path("nrql", "corpus.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fill_variables(nrql: str) -> str:
    """Corpus queries with every `{{var}}` replaced by one string value."""
    return re.sub(r"\{\{\s*\w+\s*\}\}", "'x'", nrql)


class ChdbStore:
    """The events table in chdb (the ClickHouse engine in-process), `attrs` as JSON text.

    Test-only: the read side of a ClickHouse store, loaded from a DuckDB store's rows.
    chdb allows one engine per process, so every store is a database in one session.
    """

    dialect = "clickhouse"
    _session: Any = None
    _count = 0

    def __init__(self, source: DuckDBStore, workdir: Path) -> None:
        session = self.shared_session(workdir)
        ChdbStore._count += 1
        self.database = f"nrql_test_{ChdbStore._count}"
        session.query(f"CREATE DATABASE {self.database}")
        columns = [f"`{name}` {_clickhouse_type(sql_type)}" for name, sql_type in BASE_COLUMNS]
        columns += [f"`{hot.column}` Nullable({_clickhouse_type(hot.sql_type)})"
                    for hot in HOT_COLUMNS]
        columns.append(f"`{ATTRS_COLUMN}` String")
        table = f"{self.database}.{TABLE}"
        session.query(f"CREATE TABLE {table} ({', '.join(columns)}) ENGINE = Memory")
        parquet = workdir / "events.parquet"
        source.read(f"COPY (SELECT * EXCLUDE ({DEDUP_COLUMN}) REPLACE (CAST({ATTRS_COLUMN} "
                    f"AS VARCHAR) AS {ATTRS_COLUMN}) FROM {TABLE}) TO '{parquet}' "
                    "(FORMAT parquet)", {})
        session.query(f"INSERT INTO {table} SELECT * FROM file('{parquet}', Parquet)")

    @classmethod
    def shared_session(cls, workdir: Path) -> Any:
        if cls._session is None:
            from chdb import session

            cls._session = session.Session(str(workdir / "chdb"))
        return cls._session

    def read(self, sql: str, params: dict[str, Any]) -> QueryResult:
        self._session.query(f"USE {self.database}")
        result = self._session.query(sql, "JSONCompact", params={
            name: _escaped(value) for name, value in params.items()})
        body = json.loads(result.bytes() or b'{"meta": [], "data": []}')
        return QueryResult([column["name"] for column in body["meta"]],
                           [tuple(row) for row in body["data"]])

    def close(self) -> None:
        self._session.query(f"DROP DATABASE IF EXISTS {self.database}")


def _escaped(value: Any) -> Any:
    """ClickHouse reads text query parameters in its escaped format (as clickhouse-connect
    also sends them): backslashes and control characters must be escaped."""
    if not isinstance(value, str):
        return value
    for plain, escaped in (("\\", "\\\\"), ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r"),
                           ("\0", "\\0"), ("\b", "\\b"), ("\f", "\\f")):
        value = value.replace(plain, escaped)
    return value


def _clickhouse_type(sql_type: str) -> str:
    base = sql_type.replace(" NOT NULL", "")
    return {"VARCHAR": "String", "BIGINT": "Int64", "DOUBLE": "Float64"}[base]


def make_store(path: Path, events: list[Event]) -> DuckDBStore:
    store = DuckDBStore(path)
    store.write(events)
    return store


def sample_events() -> list[Event]:
    """The shared CloudTrail and GuardDuty samples, as `trailguard import` reads them."""
    from trailguard.errors import IngestError
    from trailguard.ingest.files import read_file

    events: list[Event] = []
    for path in sorted(shared_path("samples").rglob("*.json*")):
        try:
            events.extend(read_file(path).events)
        except IngestError:
            continue  # the deliberately corrupt Firehose sample
    return events


def synthetic_events() -> list[Event]:
    """A small, hand-checkable set of events in the hour before NOW_MS.

    Ten CloudTrail-like events, one a minute from 55 minutes ago, plus three logs.
    """
    names = ["ConsoleLogin", "ConsoleLogin", "ConsoleLogin", "GetObject", "GetObject",
             "PutObject", "DeleteTrail", "ConsoleLogin", "GetObject", "StopLogging"]
    regions = ["us-east-1", "us-east-1", "eu-west-1", "us-east-1", "eu-west-1",
               "us-east-1", "ap-south-1", "us-east-1", "us-east-1", "eu-west-1"]
    events = []
    for index, (name, region) in enumerate(zip(names, regions)):
        attributes: dict[str, Any] = {
            "provider": "CloudTrail", "eventName": name, "awsRegion": region,
            "sourceIPAddress": f"198.51.100.{index % 4}", "bytes": index * 10,
            "mfa": index % 2 == 0, "userIdentity.userName": f"user_{index % 3}",
            "requestID": f"Req-{index:02d}",
        }
        if index in (1, 7):
            attributes["errorMessage"] = "Failed authentication"
            attributes["errorCode"] = "AccessDenied"
        events.append(Event("InfrastructureEvent", NOW_MS - (55 - index) * MINUTE, attributes,
                            f"ct-{index}"))
    for index, severity in enumerate((2.0, 5.5, 8.0)):
        events.append(Event("Log", NOW_MS - (30 - index) * MINUTE, {
            "source": "aws.guardduty", "detail.severity": severity, "detail.id": f"f-{index}",
            "detail.type": "Recon:EC2/PortProbeUnprotectedPort" if index else
            "UnauthorizedAccess:EC2/SSHBruteForce",
            "message": f"Finding_{index}: 100% sure"}, f"gd-{index}"))
    return events
