"""Retention: delete events older than their event type's setting, in the background.

`retention_days` maps an event type to days (`{"Log": 90}`); a type that is not
listed is kept forever, which is the default for every type. The same job forgets
Firehose delivery keys after DELIVERY_KEY_DAYS: Firehose retries a request for at
most two hours, so a week is far past any retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from trailguard.errors import StoreError
from trailguard.logs import log_fields
from trailguard.store.base import EventStore

log = logging.getLogger("trailguard.store.retention")

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
DELIVERY_KEY_DAYS = 7
DEFAULT_INTERVAL_S = 3600.0
# Events deleted per transaction, roughly. Each slice holds the store's write lock, so
# ingest waits at most one slice, even on the first pass over years of history.
SLICE_EVENTS = 50_000


def enforce_retention(store: EventStore, retention_days: Mapping[str, float], now_ms: int,
                      slice_events: int = SLICE_EVENTS,
                      stopping: Callable[[], bool] = lambda: False) -> dict[str, int]:
    """Apply `retention_days` once; events deleted per event type, and delivery keys."""
    removed: dict[str, int] = {}
    for event_type, days in sorted(retention_days.items()):
        cutoff = now_ms - round(days * DAY_MS)
        removed[event_type] = expire_in_slices(store, event_type, cutoff, slice_events,
                                               stopping)
    removed["(delivery keys)"] = store.forget_deliveries(now_ms - DELIVERY_KEY_DAYS * DAY_MS)
    if any(removed.values()):
        store.reclaim_space()
    return removed


def expire_in_slices(store: EventStore, event_type: str, cutoff_ms: int,
                     slice_events: int = SLICE_EVENTS,
                     stopping: Callable[[], bool] = lambda: False) -> int:
    """Delete `event_type` events older than `cutoff_ms`, oldest first, one time slice per
    transaction; the slice widens or narrows to hold about `slice_events` events."""
    lower = store.oldest(event_type)
    removed, step = 0, HOUR_MS
    while lower is not None and lower < cutoff_ms and not stopping():
        upper = min(cutoff_ms, lower + step)
        deleted = store.expire(event_type, upper)
        removed += deleted
        lower = upper
        if deleted < slice_events // 4:
            step *= 2
        elif deleted > slice_events:
            step = max(1, step // 2)
    return removed


class RetentionJob:
    """A daemon thread running `enforce_retention` now and then every `interval_s`."""

    def __init__(self, store: EventStore, retention_days: Mapping[str, float],
                 interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.retention_days = dict(retention_days)
        self.interval_s = interval_s
        self.clock = clock
        self.runs = 0
        self.last_pass_ms: int | None = None  # when the last completed pass started
        self.last_removed: dict[str, int] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trailguard-retention",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def run_once(self) -> dict[str, int]:
        """One pass; store errors are logged, and the next pass tries again."""
        started_ms = int(self.clock() * 1000)
        try:
            removed = enforce_retention(self.store, self.retention_days, started_ms,
                                        stopping=self._stopping.is_set)
        except StoreError as exc:
            log_fields(log, logging.ERROR, "retention pass failed", reason=str(exc))
            return {}
        finally:
            self.runs += 1
        self.last_pass_ms, self.last_removed = started_ms, removed
        if any(removed.values()):
            log_fields(log, logging.INFO, "retention pass", **removed)
        return removed

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.run_once()
            self._stopping.wait(self.interval_s)
