"""Event storage: the only code that knows SQL tables."""

from trailguard.store.base import Delivery, EventStore, QueryResult, WriteResult
from trailguard.store.duckdb_store import DuckDBStore

__all__ = ["Delivery", "DuckDBStore", "EventStore", "QueryResult", "WriteResult"]
