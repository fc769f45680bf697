"""What every event store offers the rest of trailguard."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from trailguard.events import Event

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: events newly stored, events already present, replayed request.

    `pending`: the delivery is kept in the spool, not yet committed; `stored` then counts
    the events it carries, and duplicates among them are counted at the commit.
    """

    stored: int
    duplicates: int
    replayed: bool = False
    pending: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request's events, with the key that makes a retry of it a replay.

    The events come either as `events` or, already in the events table's layout, as
    `table` (built by a decode worker; see `trailguard.store.arrow_rows`).
    """

    events: list[Event]
    request_id: str | None = None
    received_ms: int = 0
    table: pa.Table | None = None
    # How many events the delivery carries, and the memory its rows hold (0 for
    # `events`, which are not measured); set from the above.
    size: int = field(init=False)
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:
        # Worked out once: the writer's queue accounting asks for them several times.
        # The buffers' total size, not `nbytes`, which reads every string offset to
        # find the bytes in use (68 us against 3 for a 500-event request); the buffers
        # hold their whole size in memory anyway.
        table = self.table
        object.__setattr__(self, "size", table.num_rows if table is not None
                           else len(self.events))
        object.__setattr__(self, "nbytes", table.get_total_buffer_size()
                           if table is not None else 0)


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rows of a read, with their column names."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


class EventStore(Protocol):
    """An event store. `dialect` names the sqlglot dialect its SQL is written in."""

    dialect: str

    def write(self, events: list[Event], request_id: str | None = None,
              received_ms: int = 0) -> WriteResult:
        """Commit `events` durably, once; a repeated `request_id` stores nothing."""

    def write_deliveries(self, deliveries: list[Delivery]) -> list[WriteResult]:
        """Commit several deliveries in one transaction; one result per delivery, in order."""

    def expire(self, event_type: str, before_ms: int) -> int:
        """Delete events of `event_type` older than `before_ms`; returns how many."""

    def reclaim_space(self) -> None:
        """Let the space of deleted events be reused (after retention deleted some)."""

    def oldest(self, event_type: str) -> int | None:
        """The timestamp of the oldest `event_type` event, None when there is none."""

    def forget_deliveries(self, before_ms: int) -> int:
        """Forget delivery keys received before `before_ms`; returns how many."""

    def read(self, sql: str, params: dict[str, Any]) -> QueryResult:
        """Run one read-only statement with bound parameters."""

    def close(self) -> None:
        """Flush and release the store."""
