"""`trailguard query`: run NRQL locally or against a server, print table/json/csv."""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from trailguard.config import KEYS_FILE, Config, stored_key
from trailguard.errors import NrqlError, StoreBusyError, TrailguardError

DIALECT_WITHOUT_EXPLAIN = (
    "--dialect {dialect} only applies with --explain (it picks the SQL printed); queries "
    "run on trailguard's own DuckDB store, so add --explain or leave --dialect out")


def run_query_command(args: argparse.Namespace, config: Config | None) -> int:
    # Callers that build their own Namespace may leave the dialect out.
    dialect = getattr(args, "dialect", None) or "duckdb"
    if dialect != "duckdb" and not args.explain:
        # Running anyway would answer from DuckDB while the user asked for ClickHouse.
        print(f"trailguard: error: {DIALECT_WITHOUT_EXPLAIN.format(dialect=dialect)}",
              file=sys.stderr)
        return 2
    if args.explain:
        from trailguard.nrql import compile_nrql

        compiled = compile_nrql(args.nrql, dialect)
        print(compiled.sql)
        if compiled.params:
            print("-- parameters: " + orjson.dumps(compiled.params).decode())
        return 0

    if args.url:
        body = _remote(args.url, args.nrql, _key_dir(args, config), verify=not args.insecure)
    else:
        assert config is not None
        body = _local(config, args.nrql)

    sys.stdout.write(render(body, args.format))
    return 0


def _local(config: Config, nrql: str) -> dict[str, Any]:
    from trailguard.nrql import run_nrql
    from trailguard.store import DuckDBStore
    from trailguard.store.spool import leftover_segments

    try:
        store = DuckDBStore(config.data_dir, read_only=True,
                            memory_limit=config.store_memory_limit)
    except StoreBusyError as exc:
        raise StoreBusyError(
            f"{exc}; to query a running server use --url, e.g. `trailguard query --url "
            f"http://127.0.0.1:8080 --data-dir {config.data_dir} ...` (the API key comes from "
            "TRAILGUARD_API_KEY or that directory's keys.json)") from exc
    waiting = leftover_segments(store.spool_dir)
    if waiting:
        print(f"note: {len(waiting)} spool segment(s) in {store.spool_dir} hold requests the "
              "server acknowledged but had not committed when it stopped; they are not in "
              "this answer and are written when the server next starts", file=sys.stderr)
    try:
        return run_nrql(store, nrql)
    finally:
        store.close()


def _key_dir(args: argparse.Namespace, config: Config | None) -> Path:
    """Where keys.json is looked for: --data-dir, else the configured data directory
    (config file, TRAILGUARD_DATA_DIR), else ./data."""
    if getattr(args, "data_dir", None):
        return Path(args.data_dir)
    if config is not None:
        return config.data_dir
    return Path(os.environ.get("TRAILGUARD_DATA_DIR", "data"))


def _remote(url: str, nrql: str, data_dir: Path, verify: bool) -> dict[str, Any]:
    key = os.environ.get("TRAILGUARD_API_KEY") or stored_key(data_dir, "api_key")
    if not key:
        raise TrailguardError(
            f"no API key for {url}: set TRAILGUARD_API_KEY to the server's API key, or pass "
            f"--data-dir (or set TRAILGUARD_DATA_DIR, or data_dir in the config file) to the "
            f"server's data directory, whose keys.json holds it ({data_dir / KEYS_FILE} "
            "has none)")
    try:
        response = httpx.post(url.rstrip("/") + "/api/v1/nrql", json={"query": nrql},
                              headers={"X-Api-Key": key}, timeout=120, verify=verify)
    except httpx.HTTPError as exc:
        raise TrailguardError(f"cannot reach {url}: {exc}") from exc
    if response.status_code == 400:
        raise NrqlError(response.json().get("error", response.text))
    if response.status_code != 200:
        raise TrailguardError(f"{url} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def render(body: dict[str, Any], output_format: str) -> str:
    """The result body as JSON (exactly the API's body), CSV or a table."""
    if output_format == "json":
        return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() \
            + "\n"
    rows = body.get("results", [])
    columns = _columns(rows)
    if _facet_column_repeats(columns, body.get("metadata", {}).get("facets", [])):
        columns.remove("facet")
    if output_format == "csv":
        return _csv(rows, columns)
    if len(columns) > MAX_TABLE_COLUMNS:
        return _records(rows, columns)
    table = Table(show_lines=False)
    for column in columns:
        table.add_column(Text(_terminal_safe(column)))
    for row in rows:
        table.add_row(*[Text(_terminal_safe(_cell(row.get(column)))) for column in columns])
    return _printed(table, count=len(rows))


# Wider results (SELECT * on findings has ~100 attributes) print one block per event.
MAX_TABLE_COLUMNS = 12

# Event data is attacker-controlled: it must never become terminal escape sequences,
# rich markup or spreadsheet formulas in what an analyst looks at.
_CONTROL = dict.fromkeys(range(32), "\N{REPLACEMENT CHARACTER}")
_CONTROL.update({9: " ", 10: "\u21b5"})
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _facet_column_repeats(columns: list[str], facets: list[str]) -> bool:
    """Whether `facet` only repeats what the facets' own columns show. It does not for
    FACET CASES without a label, whose only key *is* `facet` (dropping it would leave
    the rows without their label), nor when a facet's key is missing from the rows."""
    return "facet" in columns and bool(facets) and all(
        key != "facet" and key in columns for key in facets)


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    # Attribute names come from event data too: `=cmd` must not become a formula.
    writer.writerow([_spreadsheet_safe(column) for column in columns])
    for row in rows:
        writer.writerow([_spreadsheet_safe(row.get(column)) for column in columns])
    return buffer.getvalue()


def _records(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """One block per row, fields in the result's own order (SELECT order), not sorted:
    sorting puts sum.x10 before sum.x2 and the first item anywhere."""
    blocks = []
    for index, row in enumerate(rows, start=1):
        block = Table(title=f"event {index}", title_justify="left", show_header=False)
        block.add_column("attribute")
        block.add_column("value")
        for key in columns:
            if row.get(key) is not None:
                block.add_row(Text(_terminal_safe(key)),
                              Text(_terminal_safe(_cell(row[key]))))
        blocks.append(block)
    return _printed(*blocks, count=len(rows))


def _printed(*renderables: Any, count: int) -> str:
    console = Console(file=io.StringIO(), width=200, force_terminal=False, markup=False,
                      emoji=False, highlight=False)
    for renderable in renderables:
        console.print(renderable)
    console.print(f"{count} row(s)")
    return console.file.getvalue()  # type: ignore[attr-defined]


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def _terminal_safe(text: str) -> str:
    return text.translate(_CONTROL).replace("\x7f", "\N{REPLACEMENT CHARACTER}")


def _spreadsheet_safe(value: Any) -> str:
    text = _cell(value)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text
