"""Errors a backend raises while running a compiled query, as trailguard errors.

The compiler checks what it can (regexes, limits) before any SQL runs, but some input
only fails inside the backend: a regex read from event data (`x RLIKE y`), a
conversion out of range. Such a failure is the query's fault, so the user gets a
400-class `NrqlError` with the backend's reason, never a 500. Failures of the store
itself (I/O, a missing table, a lost connection) stay `StoreError` (503); a query that needs
more memory than the store may use is `QueryTooLargeError` (422: retrying will not help).
"""

from __future__ import annotations

import re
import sys

from trailguard.errors import NrqlError, QueryTooLargeError, StoreError, TrailguardError

# DuckDB's exception classes (by name: duckdb is imported only where a store uses it)
# that mean "this statement cannot run on this input".
_DUCKDB_QUERY_ERRORS = ("ProgrammingError", "DataError", "NotSupportedError")
_DUCKDB_STORE_ERRORS = ("CatalogException",)   # no events table: the store, not the query

# ClickHouse error codes that are the server's trouble, not the query's: unknown
# table/database, timeouts, too many queries, network, memory, cancelled, internal.
_CLICKHOUSE_STORE_CODES = frozenset({60, 81, 159, 160, 202, 209, 210, 394, 1000, 1001})
_CLICKHOUSE_MEMORY_LIMIT = 241  # MEMORY_LIMIT_EXCEEDED
_CLICKHOUSE_CODE = re.compile(r"Code: (\d+)\. DB::Exception: ")

MAX_REASON = 300


def translate(error: Exception, query: str) -> TrailguardError | None:
    """The trailguard error for a backend failure, None when `error` is not one."""
    if isinstance(error, TrailguardError):
        return None
    found = _CLICKHOUSE_CODE.search(str(error))
    if found:
        reason = str(error)[found.end():]
        if int(found.group(1)) == _CLICKHOUSE_MEMORY_LIMIT:
            return _too_large(reason)
        if int(found.group(1)) in _CLICKHOUSE_STORE_CODES:
            return StoreError(f"the store failed: {_first_line(reason)}")
        return _query_error(reason, query)
    duckdb = sys.modules.get("duckdb")
    if duckdb is None or not isinstance(error, duckdb.Error):
        return None
    if isinstance(error, duckdb.OutOfMemoryException):
        return _too_large(str(error))
    if isinstance(error, tuple(getattr(duckdb, name) for name in _DUCKDB_STORE_ERRORS)):
        return StoreError(f"the store failed: {_first_line(str(error))}")
    if isinstance(error, tuple(getattr(duckdb, name) for name in _DUCKDB_QUERY_ERRORS)):
        return _query_error(str(error), query)
    return StoreError(f"the store failed: {_first_line(str(error))}")


def _too_large(reason: str) -> QueryTooLargeError:
    return QueryTooLargeError(
        "the query needs more memory than the store may use (store_memory_limit): narrow it "
        f"(a shorter time range, fewer FACET values) or raise the limit ({_first_line(reason)})")


def _query_error(reason: str, query: str) -> NrqlError:
    # No position: the backend reports where in the SQL, which the user did not write.
    return NrqlError(f"the query cannot run on this data: {_first_line(reason)}", query)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line if len(line) <= MAX_REASON else line[:MAX_REASON] + "…"
