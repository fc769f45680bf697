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

from trailguard.config import Config, stored_key
from trailguard.errors import NrqlError, TrailguardError


def run_query_command(args: argparse.Namespace, config: Config | None) -> int:
    if args.explain:
        from trailguard.nrql import compile_nrql

        compiled = compile_nrql(args.nrql)
        print(compiled.sql)
        if compiled.params:
            print("-- parameters: " + orjson.dumps(compiled.params).decode())
        return 0

    if args.url:
        body = _remote(args.url, args.nrql, Path(os.environ.get("TRAILGUARD_DATA_DIR", "data")),
                       verify=not args.insecure)
    else:
        assert config is not None
        body = _local(config, args.nrql)

    sys.stdout.write(render(body, args.format))
    return 0


def _local(config: Config, nrql: str) -> dict[str, Any]:
    from trailguard.nrql import run_nrql
    from trailguard.store import DuckDBStore

    store = DuckDBStore(config.data_dir, read_only=True)
    try:
        return run_nrql(store, nrql)
    finally:
        store.close()


def _remote(url: str, nrql: str, data_dir: Path, verify: bool) -> dict[str, Any]:
    key = os.environ.get("TRAILGUARD_API_KEY") or stored_key(data_dir, "api_key")
    if not key:
        raise TrailguardError("set TRAILGUARD_API_KEY to the server's API key")
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
    if len(body.get("metadata", {}).get("facets", [])) == 1 and "facet" in columns:
        columns.remove("facet")  # the facet's own column already shows the value
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(column)) for column in columns])
        return buffer.getvalue()
    table = Table(*columns, show_lines=False)
    for row in rows:
        table.add_row(*[_cell(row.get(column)) for column in columns])
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    console.print(table)
    console.print(f"{len(rows)} row(s)")
    return console.file.getvalue()  # type: ignore[attr-defined]


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)
