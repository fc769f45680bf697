"""A decoded request that finds the ingest queue full waits a little for room.

The writer refuses a delivery when its queue is full (`StoreOverloadedError`, answered
503, which Firehose retries). By then the request has been read and decoded, ~20 us of
CPU per event: at 10 million events through a busy store, 1,133 requests (5.7% of them)
were decoded, refused, sent again and decoded again, taking that CPU from the commits
that would have made room. So a decoded request waits up to `wait_s` for the next commit
to free room. Waiters are bounded in number and in the memory their rows hold; when they
are at the bound, a new request is refused before it is decoded
(`refuse_if_crowded`).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future

from trailguard.errors import StoreOverloadedError
from trailguard.store.base import Delivery, WriteResult
from trailguard.store.spool import SpoolRecord
from trailguard.store.writer import GroupCommitWriter

# A commit of a full batch takes 0.2-0.7 s on a busy 2-core machine.
QUEUE_WAIT_S = 2.0
QUEUE_POLL_S = 0.05
MAX_WAITERS = 8
# Waiters may hold at most this share of the queue's byte bound in rows.
WAITING_SHARE_OF_QUEUE_BYTES = 0.25


class QueueAdmission:
    """Submits deliveries to `writer`, waiting for room when its queue is full."""

    def __init__(self, writer: GroupCommitWriter, max_waiters: int = MAX_WAITERS,
                 wait_s: float = QUEUE_WAIT_S) -> None:
        self.writer = writer
        self.max_waiters = max_waiters
        self.wait_s = wait_s
        self._waiting = 0
        self._waiting_bytes = 0

    def refuse_if_crowded(self) -> None:
        """Raise `StoreOverloadedError` when requests already wait for room up to the
        bound: a request refused now is spared its decoding."""
        if self._waiting >= self.max_waiters:
            raise StoreOverloadedError(
                f"ingest queue is full and {self._waiting} requests wait for room; "
                "retry later")

    async def submit(self, delivery: Delivery,
                     record: SpoolRecord | None) -> Future[WriteResult]:
        """`writer.submit`, tried again every QUEUE_POLL_S while the queue is full, for at
        most `wait_s`; raises `StoreOverloadedError` when no room came, or when waiting
        would pass the bound on waiters."""
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                return self.writer.submit(delivery, record)
            except StoreOverloadedError:
                if time.monotonic() >= deadline or not self._may_wait(delivery.nbytes):
                    raise
            self._waiting += 1
            self._waiting_bytes += delivery.nbytes
            try:
                await asyncio.sleep(QUEUE_POLL_S)
            finally:
                self._waiting -= 1
                self._waiting_bytes -= delivery.nbytes

    def _may_wait(self, nbytes: int) -> bool:
        if self._waiting == 0:
            return True  # one waiter whatever its size, so a big request is not starved
        byte_bound = self.writer.max_queued_bytes * WAITING_SHARE_OF_QUEUE_BYTES
        return (self._waiting < self.max_waiters
                and self._waiting_bytes + nbytes <= byte_bound)
