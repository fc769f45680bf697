"""`trailguard query --explain [--dialect duckdb|clickhouse]` prints SQL without a store."""

from __future__ import annotations

import pytest

from trailguard.cli import main

QUERY = "FROM Log SELECT count(*) WHERE eventName LIKE '%Object%' FACET awsRegion SINCE 1 day ago"


def explain(capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str, str]:
    status = main(["query", "--explain", *flags, QUERY])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_explain_defaults_to_duckdb(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = explain(capsys)
    assert status == 0
    assert "a_awsregion" in out
    assert "$p0" in out and "{p0" not in out       # DuckDB placeholders
    assert '"p0":"Log"' in out.splitlines()[-1]     # values are listed, not pasted


@pytest.mark.parametrize("dialect, placeholder, function", [
    ("duckdb", "$p3", "LOWER(a_eventname) LIKE"),
    ("clickhouse", "{p3: String}", "ilike(a_eventname"),
])
def test_explain_prints_the_chosen_dialect(capsys: pytest.CaptureFixture[str], dialect: str,
                                           placeholder: str, function: str) -> None:
    status, out, _ = explain(capsys, "--dialect", dialect)
    assert status == 0
    assert placeholder in out
    assert function in out
    assert "Object" not in out.splitlines()[0]      # the pattern is a parameter


def test_explain_rejects_an_unknown_dialect(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["query", "--explain", "--dialect", "postgres", QUERY])
    assert exit_info.value.code == 2
    assert "invalid choice: 'postgres'" in capsys.readouterr().err


def test_explain_of_an_invalid_query_names_the_position(
        capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["query", "--explain", "--dialect", "clickhouse",
                   "FROM Log SELECT count(*) WHERE"])
    assert status == 2
    error = capsys.readouterr().err
    assert "expected a value, an attribute or a function, found end of query" in error
    assert "line 1, column 31" in error
