"""Group commit: one writer thread turns many concurrent deliveries into few transactions.

Each commit costs an fsync of the WAL, whatever its size, so committing every request
on its own caps ingest at the disk's fsync rate. Requests instead join a queue; the
writer thread takes everything queued (up to `max_group_events`), commits it in one
transaction and only then resolves each request's future, so an HTTP 200 still means
"on disk". The queue is bounded in events and in bytes (the rows of one request take
from kilobytes to over a hundred megabytes): past `max_queued_events` or `max_queued_bytes` a submission is
refused with `StoreOverloadedError`, which receivers answer with 503 (Firehose retries).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

from trailguard.errors import StoreError, StoreOverloadedError
from trailguard.logs import log_fields
from trailguard.store.base import Delivery, EventStore, WriteResult

log = logging.getLogger("trailguard.store.writer")


@dataclass(slots=True)
class _Pending:
    delivery: Delivery
    future: Future[WriteResult]


class GroupCommitWriter:
    """Serialises writes to `store` through one thread, batching concurrent ones."""

    def __init__(self, store: EventStore, max_queued_events: int = 50_000,
                 max_group_events: int = 20_000,
                 max_queued_bytes: int = 256 * 1024 * 1024) -> None:
        self.store = store
        self.max_queued_events = max_queued_events
        self.max_queued_bytes = max_queued_bytes
        self.max_group_events = max_group_events
        self.commits = 0
        self._queue: deque[_Pending] = deque()
        self._queued_events = 0
        self._queued_bytes = 0
        self._closed = False
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="trailguard-writer", daemon=True)
        self._thread.start()

    def submit(self, delivery: Delivery) -> Future[WriteResult]:
        """Queue `delivery`; the future resolves once its transaction has committed.

        Raises `StoreOverloadedError` when the queue is full. A delivery larger than
        the whole bound is still taken when the queue is empty, so it is never refused
        forever.
        """
        size, nbytes = max(1, delivery.size), delivery.nbytes
        future: Future[WriteResult] = Future()
        with self._ready:
            if self._closed:
                raise StoreError("the store is shutting down; retry later")
            if self._queue and self._queued_events + size > self.max_queued_events:
                raise StoreOverloadedError(
                    f"ingest queue is full ({self._queued_events} events waiting, bound "
                    f"{self.max_queued_events}); retry later")
            if self._queue and self._queued_bytes + nbytes > self.max_queued_bytes:
                raise StoreOverloadedError(
                    f"ingest queue is full ({self._queued_bytes // 2**20} MiB waiting, bound "
                    f"{self.max_queued_bytes // 2**20} MiB); retry later")
            self._queue.append(_Pending(delivery, future))
            self._queued_events += size
            self._queued_bytes += nbytes
            self._ready.notify()
        return future

    def write(self, delivery: Delivery) -> WriteResult:
        """Submit and wait (for callers outside the event loop)."""
        return self.submit(delivery).result()

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            group = self._next_group()
            if group is None:
                return
            if group:
                self._commit(group)

    def _next_group(self) -> list[_Pending] | None:
        with self._ready:
            while not self._queue and not self._closed:
                self._ready.wait()
            if not self._queue:
                return None
            group: list[_Pending] = []
            events = 0
            while self._queue and (not group or events + self._queue[0].delivery.size
                                   <= self.max_group_events):
                pending = self._queue.popleft()
                self._queued_events -= max(1, pending.delivery.size)
                self._queued_bytes -= pending.delivery.nbytes
                # False when the waiter gave up (cancelled): the sender retries anyway.
                # True makes the future uncancellable, so setting its result cannot fail.
                if pending.future.set_running_or_notify_cancel():
                    group.append(pending)
                    events += pending.delivery.size
            return group

    def _commit(self, group: list[_Pending]) -> None:
        started = time.monotonic()
        try:
            results = self.store.write_deliveries([pending.delivery for pending in group])
        except StoreError as exc:
            if len(group) == 1:
                group[0].future.set_exception(exc)
                return
            # One delivery may have spoiled the group: commit each alone so only it fails.
            log_fields(log, logging.WARNING, "group commit failed; retrying one by one",
                       deliveries=len(group), reason=str(exc))
            for pending in group:
                self._commit([pending])
            return
        except BaseException as exc:  # noqa: BLE001 - every waiter must hear about it
            for pending in group:
                pending.future.set_exception(StoreError(f"store write failed: {exc!r}"))
            return
        self.commits += 1
        for pending, result in zip(group, results, strict=True):
            pending.future.set_result(result)
        log_fields(log, logging.DEBUG, "group committed", deliveries=len(group),
                   events=sum(p.delivery.size for p in group),
                   ms=round((time.monotonic() - started) * 1000, 1))
