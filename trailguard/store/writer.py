"""Group commit: one writer thread turns many concurrent deliveries into few transactions.

Each commit costs an fsync of the WAL, whatever its size, so committing every request
on its own caps ingest at the disk's fsync rate. Requests instead join a queue; the
writer thread takes everything queued (up to `max_group_events`) and commits it in one
transaction. The queue is bounded in events and in bytes (the rows of one request take
from kilobytes to over a hundred megabytes): past `max_queued_events` or
`max_queued_bytes` a submission is refused with `StoreOverloadedError`, which receivers
answer with 503 (Firehose retries).

With a `Spool`, a delivery that comes with its `SpoolRecord` is acknowledged once the
record is fsync'd to the spool, and its rows wait in a batch until `commit_rows` rows
are gathered, `commit_delay_s` has passed, a reader asks for them (`flush`, which every
store read calls first), or a delivery without a record (a poller's page) arrives. Big
transactions let the store write whole compressed row groups (see `spool.py`). Without
a record, a delivery's future resolves once its transaction has committed.

A batch the store refuses stays in the spool and in memory and is tried again after a
pause; the queue bound then answers new senders 503. When several deliveries fail
together but some succeed alone, those that fail alone are set aside in the spool's
`unreadable/` folder (never deleted) and logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from trailguard.errors import StoreError, StoreOverloadedError, StoreUnavailableError
from trailguard.logs import log_fields
from trailguard.store.base import Delivery, EventStore, WriteResult
from trailguard.store.spool import Spool, SpoolRecord, read_segment

log = logging.getLogger("trailguard.store.writer")

# How long a reader waits for acknowledged rows to be committed before it reads without
# them (the store is failing; the rows are safe in the spool meanwhile).
FLUSH_TIMEOUT_S = 30.0
# Pauses before a refused batch is tried again.
RETRY_PAUSES_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

# Decodes a spooled request again (after a restart), as its receiver did.
Replay = Callable[[SpoolRecord], Delivery]


@dataclass(slots=True)
class _Pending:
    delivery: Delivery
    future: Future[WriteResult]
    record: SpoolRecord | None = None


class GroupCommitWriter:
    """Serialises writes to `store`, batching concurrent ones.

    Two threads: the intake thread moves queued deliveries into the batch (appending
    those with a record to the spool and acknowledging them); the commit thread commits
    the batch. So a slow commit does not hold up acknowledgements.
    """

    def __init__(self, store: EventStore, max_queued_events: int = 50_000,
                 max_group_events: int = 20_000,
                 max_queued_bytes: int = 256 * 1024 * 1024,
                 spool: Spool | None = None, replay: Replay | None = None,
                 commit_rows: int = 16_384, commit_delay_s: float = 1.0) -> None:
        self.store = store
        self.max_queued_events = max_queued_events
        self.max_queued_bytes = max_queued_bytes
        self.max_group_events = max_group_events
        self.commit_rows = commit_rows
        self.commit_delay_s = commit_delay_s
        self.commits = 0
        self._spool = spool
        self._queue: deque[_Pending] = deque()
        self._queued_events = 0  # queued, and batched but not committed
        self._queued_bytes = 0
        self._batch: list[_Pending] = []
        self._batch_rows = 0
        self._batch_since = 0.0
        # Segments whose deliveries were taken into a batch that is not committed yet.
        self._held_segments: list[Path] = []
        self._submitted = 0  # deliveries submitted; a reader waits for this many ...
        self._committed = 0  # ... to be committed (or refused)
        self._flush_upto = 0  # a reader waits for the deliveries submitted up to here
        self._retry_at = 0.0
        self._failures = 0
        self._room_wanted = False  # a submission was refused for want of room
        self._closed = False
        self._intake_done = False
        self._ready = threading.Condition()  # the queue, the batch and the counters
        # Held across a spool append and the batching of its deliveries, and across a
        # batch's hand-over and the spool segment's rotation: a segment then holds exactly
        # the deliveries of the batches it is deleted with.
        self._intake_lock = threading.Lock()
        # Set when a request could not be set aside: its batch's segments are then kept.
        self._kept_aside_failed = False
        self._in_hand: list[_Pending] = []  # taken from the queue, not yet batched
        if spool is not None:
            if replay is None:
                raise ValueError("a spool needs a replay function for what it holds")
            self._recover(spool, replay)
            set_barrier = getattr(store, "set_read_barrier", None)
            if set_barrier is not None:
                set_barrier(self.flush)
        self._intake_thread = threading.Thread(
            target=self._guarded, args=(self._intake_until_closed, "ingest intake"),
            name="trailguard-intake", daemon=True)
        self._thread = threading.Thread(
            target=self._guarded, args=(self._commit_until_closed, "ingest commits"),
            name="trailguard-writer", daemon=True)
        self._intake_thread.start()
        self._thread.start()

    def submit(self, delivery: Delivery,
               record: SpoolRecord | None = None) -> Future[WriteResult]:
        """Queue `delivery`; the future resolves once its transaction has committed, or,
        with a spool and `record`, once the record is on disk in the spool (the result
        then has `pending` set: duplicates are counted when the batch commits).

        Raises `StoreOverloadedError` when the queue is full. A delivery larger than
        the whole bound is still taken when the queue is empty, so it is never refused
        forever.
        """
        size, nbytes = max(1, delivery.size), delivery.nbytes
        future: Future[WriteResult] = Future()
        if self._spool is None:
            record = None
        with self._ready:
            if self._closed:
                raise StoreError("the store is shutting down; retry later")
            waiting = bool(self._queue or self._batch)
            over_events = waiting and self._queued_events + size > self.max_queued_events
            over_bytes = waiting and self._queued_bytes + nbytes > self.max_queued_bytes
            if over_events or over_bytes:
                # Commit what is batched now rather than at commit_rows or after
                # commit_delay_s: with bounds below a batch, ingest would otherwise run
                # at one bound's worth per commit_delay_s.
                self._room_wanted = True
                self._ready.notify_all()
            if over_events:
                raise StoreOverloadedError(
                    f"ingest queue is full ({self._queued_events} events waiting, bound "
                    f"{self.max_queued_events}); retry later")
            if over_bytes:
                raise StoreOverloadedError(
                    f"ingest queue is full ({self._queued_bytes // 2**20} MiB waiting, bound "
                    f"{self.max_queued_bytes // 2**20} MiB); retry later")
            self._queue.append(_Pending(delivery, future, record))
            self._queued_events += size
            self._queued_bytes += nbytes
            self._submitted += 1
            self._ready.notify_all()
        return future

    def write(self, delivery: Delivery) -> WriteResult:
        """Submit and wait until committed (for callers outside the event loop)."""
        return self.submit(delivery).result()

    def flush(self) -> None:
        """Wait until every delivery submitted so far is committed (or refused): what
        a reader calls so that an acknowledged request is in its answer. Returns after
        FLUSH_TIMEOUT_S regardless, when the store keeps refusing the batch."""
        if threading.current_thread() in (self._thread, self._intake_thread):
            return
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        with self._ready:
            target = self._submitted
            while self._committed < target and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    log_fields(log, logging.WARNING, "read goes ahead without rows the store "
                               "has not committed yet", waiting=target - self._committed)
                    return
                self._flush_upto = max(self._flush_upto, target)
                self._ready.notify_all()
                self._ready.wait(min(left, 1.0))

    def close(self) -> None:
        """Commit what is queued, then stop both threads."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._intake_thread.join()
        self._thread.join()
        if self._spool is not None:
            self._spool.close()

    # -- intake: queue -> spool -> batch ------------------------------------------------

    def _guarded(self, loop: Callable[[], None], name: str) -> None:
        """Run one of the two threads' loops; a bug in it answers every waiting sender and
        reader (`_stop_after_bug`) rather than leaving them to hang."""
        try:
            loop()
        except BaseException as exc:
            log_fields(log, logging.CRITICAL, f"{name} stopped by a bug", reason=repr(exc))
            self._stop_after_bug(exc)
            raise

    def _intake_until_closed(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if not self._queue:
                    self._intake_done = True
                    self._ready.notify_all()
                    return
                taken = list(self._queue)
                self._queue.clear()
                self._in_hand = taken  # answered by `_stop_after_bug` should this fail
            self._accept(taken)
            self._in_hand = []
            del taken  # the rows are the batch's now: not held while the intake waits

    def _accept(self, taken: list[_Pending]) -> None:
        """Spool the deliveries that have a record, batch them all, then acknowledge the
        spooled ones. A sender that cancelled its spooled delivery is dropped here."""
        spooled = [pending for pending in taken if pending.record is not None]
        cancelled = [pending for pending in spooled
                     if not pending.future.set_running_or_notify_cancel()]
        if cancelled:
            self._forget(cancelled)
            spooled = [pending for pending in spooled if pending not in cancelled]
            taken = [pending for pending in taken if pending not in cancelled]
        with self._intake_lock:
            if spooled and self._spool is not None:
                try:
                    self._spool.append([pending.record for pending in spooled
                                        if pending.record is not None])
                except OSError as exc:
                    log_fields(log, logging.ERROR, "cannot write the spool", reason=str(exc))
                    refused = StoreError(f"cannot keep the delivery on disk: {exc}")
                    for pending in spooled:
                        pending.future.set_exception(refused)
                    self._forget(spooled)
                    taken = [pending for pending in taken if pending.record is None]
                    spooled = []
            with self._ready:
                if taken and not self._batch:
                    self._batch_since = time.monotonic()
                self._batch.extend(taken)
                self._batch_rows += sum(pending.delivery.size for pending in taken)
                self._ready.notify_all()
        for pending in spooled:
            pending.future.set_result(WriteResult(pending.delivery.size, 0, pending=True))

    # -- commit: batch -> store ---------------------------------------------------------

    def _commit_until_closed(self) -> None:
        while True:
            with self._ready:
                while not self._commit_due():
                    if self._closed and self._intake_done and not self._batch:
                        return
                    if (self._closed and self._intake_done
                            and time.monotonic() < self._retry_at):
                        self._give_up_on_batch()
                        return
                    self._ready.wait(self._wait_s())
            batch, segments = self._take_batch()
            if batch:
                self._commit_batch(batch, segments)
            # Let go of the committed rows now, not when the next batch comes: they hold
            # memory, and rows a decode worker handed over hold its file.
            del batch, segments

    def _commit_due(self) -> bool:
        if not self._batch:
            return False
        now = time.monotonic()
        if now < self._retry_at:
            return False
        return ((self._closed and self._intake_done) or self._flush_upto > self._committed
                or self._batch_rows >= self.commit_rows or self._room_wanted
                or now - self._batch_since >= self.commit_delay_s
                or any(pending.record is None for pending in self._batch))

    def _wait_s(self) -> float | None:
        if not self._batch:
            return None
        now = time.monotonic()
        # Paused after a refusal: wake when the pause ends. Otherwise the batch is due at
        # its delay; submissions and readers wake the thread sooner.
        due = self._retry_at if now < self._retry_at else self._batch_since + self.commit_delay_s
        return max(0.001, due - now)

    def _take_batch(self) -> tuple[list[_Pending], list[Path]]:
        """The deliveries to commit now and the spool segments to delete after.

        With a spool the whole batch goes (its segment holds exactly it); without one, at
        most `max_group_events` events. A waiting sender that cancelled is dropped.
        """
        with self._intake_lock, self._ready:
            self._room_wanted = False
            if self._spool is not None:
                batch, self._batch, self._batch_rows = self._batch, [], 0
            else:
                batch, events = [], 0
                while self._batch and (not batch or events + self._batch[0].delivery.size
                                       <= self.max_group_events):
                    pending = self._batch.pop(0)
                    events += pending.delivery.size
                    batch.append(pending)
                self._batch_rows -= events
                self._batch_since = time.monotonic()
            rotated = self._spool.rotate() if self._spool is not None else []
        segments, self._held_segments = self._held_segments + rotated, []
        # False when a waiting sender gave up (cancelled): it retries anyway. True makes
        # the future uncancellable, so setting its result cannot fail.
        cancelled = [pending for pending in batch if pending.record is None
                     and not pending.future.set_running_or_notify_cancel()]
        if cancelled:
            self._forget(cancelled)
            batch = [pending for pending in batch if pending not in cancelled]
        return batch, segments

    def _commit_batch(self, batch: list[_Pending], segments: list[Path]) -> None:
        self._kept_aside_failed = False
        if self._commit(batch):
            if self._spool is not None and not self._kept_aside_failed:
                self._release(segments)
            self._failures = 0
            self._forget(batch)
            return
        # The store refused the batch as a whole. Senders waiting for the commit hear
        # why and retry; spooled deliveries go back to the front of the batch, and their
        # segments stay on disk until they are committed. Then a pause.
        waiting = [pending for pending in batch if pending.record is None]
        self._resolve(waiting, StoreError("the store refused the write; retry later"))
        self._forget(waiting)
        kept = [pending for pending in batch if pending.record is not None]
        pause = RETRY_PAUSES_S[min(self._failures, len(RETRY_PAUSES_S) - 1)]
        self._failures += 1
        self._held_segments = segments
        with self._ready:
            if kept:
                self._batch[:0] = kept
                self._batch_rows += sum(pending.delivery.size for pending in kept)
            self._retry_at = time.monotonic() + pause
            self._ready.notify_all()

    def _stop_after_bug(self, exc: BaseException) -> None:
        """Refuse new deliveries and answer every waiting sender and reader, so nothing
        hangs; what was acknowledged is in the spool for the next start."""
        refused = StoreError(f"ingest stopped after an internal error ({exc!r}); "
                             "restart the server")
        with self._ready:
            self._closed = True
            pending = list(self._queue) + self._in_hand + self._batch
            self._queue.clear()
            self._batch, self._batch_rows = [], 0
            for waiting in pending:
                if not waiting.future.done():  # acknowledged ones wait in the spool
                    waiting.future.set_exception(refused)
            self._committed = self._submitted
            self._intake_done = True
            self._ready.notify_all()

    def _release(self, segments: list[Path]) -> None:
        if self._spool is None:
            return
        try:
            with self._intake_lock:
                self._spool.release(segments)
        except OSError as exc:
            # Left on disk, they are written again at the next start: a replay.
            log_fields(log, logging.ERROR, "cannot delete committed spool segments",
                       reason=str(exc))

    def _give_up_on_batch(self) -> None:
        """Stopping while the store refuses the batch: it stays in the spool for the next
        start; senders still waiting hear that it was not stored."""
        log_fields(log, logging.ERROR, "stopping with deliveries not committed; those "
                   "acknowledged are in the spool and are written at the next start",
                   deliveries=len(self._batch))
        batch, self._batch, self._batch_rows = self._batch, [], 0
        self._resolve(batch, StoreError("the store refused the write; retry later"))
        self._forget(batch)  # the caller holds `_ready`; it is re-entrant

    def _commit(self, group: list[_Pending]) -> bool:
        """Commit `group` in one transaction; False when the store refused it as a whole
        (nothing stored; spooled deliveries stay waiting). A delivery that fails alone
        while others succeed is answered with its error, or set aside when spooled."""
        started = time.monotonic()
        try:
            results = self.store.write_deliveries([pending.delivery for pending in group])
        except StoreUnavailableError as exc:
            # The disk, not a delivery: the whole batch waits and is tried again.
            log_fields(log, logging.ERROR, "the store cannot write; the batch waits in the "
                       "spool", deliveries=len(group), reason=str(exc))
            return False
        except StoreError as exc:
            if len(group) == 1:
                return self._refused_alone(group[0], exc, others_succeeded=False)
            # One delivery may have spoiled the group: commit each alone so only it fails.
            log_fields(log, logging.WARNING, "group commit failed; retrying one by one",
                       deliveries=len(group), reason=str(exc))
            refusals = [self._commit_alone(pending) for pending in group]
            failed = [(pending, refusal) for pending, refusal in zip(group, refusals, strict=True)
                      if refusal is not None]
            # All refused, or some only because the disk filled up meanwhile: tried again
            # later (those committed alone are then replays, stored once).
            if len(failed) == len(group) or any(
                    isinstance(refusal, StoreUnavailableError) for _, refusal in failed):
                return False
            for pending, refusal in failed:
                self._refused_alone(pending, refusal, others_succeeded=True)
            return True
        except BaseException as exc:  # noqa: BLE001 - every waiter must hear about it
            log_fields(log, logging.ERROR, "store write failed", reason=repr(exc))
            return False
        self.commits += 1
        for pending, result in zip(group, results, strict=True):
            if pending.record is None:
                pending.future.set_result(result)
        log_fields(log, logging.DEBUG, "group committed", deliveries=len(group),
                   events=sum(p.delivery.size for p in group),
                   stored=sum(r.stored for r in results),
                   duplicates=sum(r.duplicates for r in results),
                   ms=round((time.monotonic() - started) * 1000, 1))
        return True

    def _commit_alone(self, pending: _Pending) -> StoreError | None:
        """Commit one delivery; the store's refusal, or None when it is stored."""
        try:
            result = self.store.write_deliveries([pending.delivery])[0]
        except StoreError as exc:
            return exc
        if pending.record is None:
            pending.future.set_result(result)
        return None

    def _refused_alone(self, pending: _Pending, exc: StoreError,
                       others_succeeded: bool) -> bool:
        """A delivery the store refused on its own. A waiting sender hears why. A spooled
        one is set aside when others committed (it is the cause), else kept for a retry."""
        if pending.record is None:
            pending.future.set_exception(exc)
            return True
        if others_succeeded and self._spool is not None:
            try:
                with self._intake_lock:
                    self._spool.quarantine(pending.record, str(exc))
            except OSError as error:
                # It stays in its segment, which is then kept for the next start.
                self._kept_aside_failed = True
                log_fields(log, logging.ERROR, "cannot set an acknowledged request aside; "
                           "its spool segment is kept", reason=str(error))
            return True
        return False

    def _resolve(self, group: list[_Pending], exc: StoreError) -> None:
        for pending in group:
            if pending.record is None and not pending.future.done():
                pending.future.set_exception(exc)

    def _forget(self, group: list[_Pending]) -> None:
        """`group` is done with (committed, refused or cancelled): free its share of the
        queue bound, and let readers waiting for it go on."""
        with self._ready:
            for pending in group:
                self._queued_events -= max(1, pending.delivery.size)
                self._queued_bytes -= pending.delivery.nbytes
            self._committed += len(group)
            self._ready.notify_all()

    def _recover(self, spool: Spool, replay: Replay) -> None:
        """Write what an earlier run acknowledged but may not have committed (segments
        still in the spool), then delete those segments (or set a damaged one aside).
        Request keys make a delivery committed before the crash a replay, stored once."""
        for segment in spool.leftover_segments():
            try:
                contents = read_segment(segment)
            except OSError as exc:
                raise StoreError(f"cannot read the spool segment {segment}: {exc}; move it "
                                 "out of the spool folder to start without it") from exc
            group = []
            for record in contents.records:
                try:
                    group.append(_Pending(replay(record), Future(), record))
                except Exception as exc:  # noqa: BLE001 - decoding rules may have changed
                    spool.quarantine(record, f"cannot decode it again: {exc}")
            for start in range(0, len(group), 64):
                self._recover_part(spool, segment, group[start:start + 64])
            log_fields(log, logging.INFO, "spooled requests written after a restart",
                       segment=segment.name, requests=len(group),
                       events=sum(p.delivery.size for p in group))
            try:
                if contents.damaged:
                    spool.set_aside(segment, "damaged frames were skipped")
                else:
                    segment.unlink()
            except OSError as exc:
                raise StoreError(f"cannot remove the written spool segment {segment}: {exc}"
                                 ) from exc

    def _recover_part(self, spool: Spool, segment: Path, part: list[_Pending]) -> None:
        """Commit spooled requests at start. Those the store refuses on their own, while
        others commit, are set aside; so is a lone request it refuses (else no restart
        could get past it). When it refuses every one of several, the store is at fault:
        starting fails with its reason, and they stay in the spool."""
        try:
            self.store.write_deliveries([pending.delivery for pending in part])
            return
        except StoreError:
            pass
        refused: list[tuple[_Pending, StoreError]] = []
        for pending in part:
            try:
                self.store.write_deliveries([pending.delivery])
            except StoreError as exc:
                refused.append((pending, exc))
        unavailable = [exc for _, exc in refused if isinstance(exc, StoreUnavailableError)]
        if unavailable or (len(part) > 1 and len(refused) == len(part)):
            reason = unavailable[0] if unavailable else refused[0][1]
            raise StoreError(f"cannot write the requests kept in {segment} to the store "
                             f"({reason}); they stay there for the next start")
        for pending, exc in refused:
            if pending.record is not None:
                try:
                    spool.quarantine(pending.record, f"the store refuses it: {exc}")
                except OSError as error:
                    raise StoreError(f"cannot write a request kept in {segment} to the store "
                                     f"({exc}), nor set it aside ({error}); it stays there "
                                     "for the next start") from error
