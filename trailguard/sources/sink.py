"""Where the pollers put what they read: the store itself, or the server's write queue.

`trailguard poll` owns its store and writes to it directly. Inside `trailguard serve`
the pollers write through the same `GroupCommitWriter` as the HTTP receivers, so
their pages join the same group commits (one fsync for both) and DuckDB is only ever
written by the one writer thread. No boto3 here: the web app imports this module.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from trailguard.errors import StoreOverloadedError, TrailguardError
from trailguard.events import Event
from trailguard.logs import log_fields
from trailguard.store.base import Delivery, WriteResult
from trailguard.store.writer import GroupCommitWriter

log = logging.getLogger("trailguard.sources.sink")


class EventSink(Protocol):
    """Anything the pollers can commit a page of events to (a store, a `WriterSink`)."""

    def write(self, events: list[Event]) -> WriteResult:
        """Commit `events` durably and de-duplicated; returns what was new."""


class PollStopped(TrailguardError):
    """The service is stopping: the current poll ends at a page boundary.

    Raised instead of storing, so the page's checkpoint does not move and the next
    start reads it again. Not a `SourceError`: the runner must not record it as a
    failure and go on with the next source.
    """


class WriterSink:
    """Commits through the server's group-commit writer, waiting out a full queue.

    A full queue means HTTP ingest is busy; Firehose gets a 503 and retries, and a
    poller simply waits its turn (with the same page) rather than failing the run.
    """

    def __init__(self, writer: GroupCommitWriter, stopping: threading.Event,
                 busy_wait_s: float = 0.5, max_busy_wait_s: float = 10.0) -> None:
        self.writer = writer
        self.stopping = stopping
        self.busy_wait_s = busy_wait_s
        self.max_busy_wait_s = max_busy_wait_s

    def write(self, events: list[Event]) -> WriteResult:
        """Queue `events` for the next group commit and wait until they are on disk."""
        wait = self.busy_wait_s
        while True:
            if self.stopping.is_set():
                raise PollStopped("source polling is stopping")
            if not events:
                return WriteResult(0, 0)  # an empty page: nothing to commit
            try:
                return self.writer.write(Delivery(events))
            except StoreOverloadedError as exc:
                log_fields(log, logging.INFO, "write queue full, poller waits", wait_s=wait,
                           reason=str(exc))
                self.stopping.wait(wait)
                wait = min(wait * 2, self.max_busy_wait_s)
