"""Event storage: the only code that knows SQL tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trailguard.store.base import Delivery, EventStore, QueryResult, WriteResult

if TYPE_CHECKING:
    from trailguard.store.duckdb_store import DuckDBStore

__all__ = ["Delivery", "DuckDBStore", "EventStore", "QueryResult", "WriteResult"]


def __getattr__(name: str) -> Any:
    # DuckDB is imported on first use only: decode worker processes import this package
    # (for the row layout) but never open a store, and DuckDB costs each ~25 MiB.
    if name == "DuckDBStore":
        from trailguard.store.duckdb_store import DuckDBStore

        return DuckDBStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
