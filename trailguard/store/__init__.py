"""Event storage: the only code that knows SQL tables."""

from trailguard.store.base import EventStore, QueryResult, WriteResult
from trailguard.store.duckdb_store import DuckDBStore

__all__ = ["DuckDBStore", "EventStore", "QueryResult", "WriteResult"]
