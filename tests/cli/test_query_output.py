"""`trailguard query` output for every result shape: each facet's value (FACET CASES
labels too) is in the table and the CSV, numbers print as they are in JSON, and the
options that cannot apply are refused rather than ignored."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from trailguard.cli import main
from trailguard.events import Event
from trailguard.query_client import render
from trailguard.store import DuckDBStore

HOUR = 3_600_000
NAMES = ("ConsoleLogin", "CreateUser", "CreateRole", "GetObject")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four events an hour for the last six hours (whole hours back from now)."""
    path = tmp_path_factory.mktemp("output") / "data"
    store = DuckDBStore(path)
    now = int(time.time() * 1000)
    store.write([Event("InfrastructureEvent", now - 6 * HOUR + index * HOUR // 4 + 60_000,
                       {"eventName": NAMES[index % 4], "awsRegion": f"r{index % 2}"},
                       f"out-{index}") for index in range(24)])
    store.close()
    return path


def query(capsys: pytest.CaptureFixture[str], data_dir: Path, nrql: str,
          *options: str) -> tuple[int, str, str]:
    status = main(["query", "--data-dir", str(data_dir), *options, nrql])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


CASES = ("FROM InfrastructureEvent SELECT count(*) FACET CASES (WHERE eventName = "
         "'ConsoleLogin' AS 'login', WHERE eventName LIKE 'Create%' AS 'create') "
         "SINCE 1 week ago")


def test_facet_cases_labels_are_in_the_table_and_the_csv(
        capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    status, out, _ = query(capsys, data_dir, CASES, "--format", "csv")
    assert status == 0
    assert csv_rows(out) == [["facet", "count"], ["create", "12"], ["login", "6"]]
    status, out, _ = query(capsys, data_dir, CASES)
    assert "│ create │ 12    │" in out and "│ login  │ 6     │" in out


@pytest.mark.parametrize(("clauses", "header"), [
    ("FACET eventName", ["eventName", "count"]),
    ("FACET eventName, awsRegion", ["eventName", "awsRegion", "count"]),
    ("FACET CASES (WHERE awsRegion = 'r0' AS 'zero') AS 'kind'", ["kind", "count"]),
    ("FACET CASES (WHERE awsRegion = 'r0') OR awsRegion", ["facet", "count"]),
    ("FACET CASES (WHERE awsRegion = 'r0' AS 'zero'), eventName",
     ["facet", "eventName", "count"]),
    ("FACET eventName TIMESERIES 3 hours",
     ["eventName", "beginTimeSeconds", "endTimeSeconds", "count"]),
    ("FACET eventName COMPARE WITH 1 day ago", ["eventName", "comparison", "count"]),
    ("COMPARE WITH 1 day ago", ["comparison", "count"]),
])
def test_every_shape_shows_its_facets(capsys: pytest.CaptureFixture[str], data_dir: Path,
                                      clauses: str, header: list[str]) -> None:
    nrql = f"FROM InfrastructureEvent SELECT count(*) {clauses} SINCE 6 hours ago"
    _, out, _ = query(capsys, data_dir, nrql, "--format", "json")
    body = json.loads(out)
    rows = csv_rows(render(body, "csv"))   # the same body: TIMESERIES edges move with now
    assert rows[0] == header
    # Every row's values (the facet's label included) are in the CSV, in that order.
    for row, printed in zip(body["results"], rows[1:], strict=True):
        values = [row[key] if key in row else row["facet"] for key in header]
        assert printed == [str(value) for value in values]


def test_rate_prints_the_number_json_carries(capsys: pytest.CaptureFixture[str],
                                             data_dir: Path) -> None:
    nrql = "SELECT rate(count(*), 1 hour) FROM InfrastructureEvent SINCE 6 hours ago"
    status, out, err = query(capsys, data_dir, nrql, "--format", "json")
    assert (status, err) == (0, "")
    assert json.loads(out)["results"] == [{"rate": 4}]
    _, out, _ = query(capsys, data_dir, nrql)
    assert "│ 4    │" in out and "3.99" not in out


def test_dialect_clickhouse_without_explain_is_refused(
        capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    status, out, err = query(capsys, data_dir, "FROM Log SELECT count(*)",
                             "--dialect", "clickhouse")
    assert (status, out) == (2, "")
    assert "--dialect clickhouse only applies with --explain" in err
    status, out, _ = query(capsys, data_dir, "FROM Log SELECT count(*)", "--dialect",
                           "clickhouse", "--explain")
    assert status == 0 and "FROM events" in out


def test_csv_defuses_formulas_in_headers() -> None:
    body = {"results": [{"=cmd": "=1+1", "+x": 1, "@y": "ok", "plain": -2}],
            "metadata": {"facets": []}}
    assert csv_rows(render(body, "csv")) == [["'=cmd", "'+x", "'@y", "plain"],
                                             ["'=1+1", "1", "ok", "-2"]]


def test_wide_results_keep_select_order() -> None:
    row = {"count": 1, **{f"sum.x{index}": index for index in (1, 2, 10, 100, 3)}}
    row.update({f"latest.a{index}": index for index in range(10)})
    printed = render({"results": [row], "metadata": {"facets": []}}, "table")
    lines = [line.split("│")[1].strip() for line in printed.splitlines() if "│" in line]
    assert lines == list(row)
