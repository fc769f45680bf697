"""Decode big Firehose requests in worker processes.

Turning a request into rows (`decode_rows`) holds the GIL for ~20 us per event, so in
threads it would cap ingest at one core however many the machine has. Worker processes
decode in parallel and hand back the rows as raw Arrow column buffers, which the server
wraps as a table without copying, leaving it to de-duplicate and insert. Small requests
are decoded in the request's thread: for them a round trip to a worker costs more than it
saves.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import pyarrow as pa

from trailguard.ingest.decode_rows import (
    HandedRows,
    decode_firehose_rows,
    decode_for_server,
    start_worker,
)
from trailguard.ingest.firehose import Limits
from trailguard.ingest.handoff import (
    RowsFile,
    clear_handoff_folder,
    is_handoff_folder,
    read_rows_file,
    remove_results_of,
)
from trailguard.logs import log_fields
from trailguard.store.arrow_rows import table_from_chunks

log = logging.getLogger("trailguard.ingest")

# Bodies smaller than this (compressed) are decoded in-process.
POOL_MIN_BODY_BYTES = 64 * 1024
# A 64 MiB request (Firehose's largest) decodes in seconds; a worker silent this long is
# taken for lost, and the request is decoded in the server instead.
DECODE_TIMEOUT_S = 120.0
# How often a request waiting for a worker checks that the pool's workers are alive.
WORKER_CHECK_S = 0.5
# How long closing the pool waits for its workers to finish before it kills them: by
# then no request is in flight, so a worker still busy is stuck.
CLOSE_WAIT_S = 10.0
# Past this many workers, more would add memory, not speed.
MAX_DEFAULT_WORKERS = 8
# The request headers decode_request reads; Starlette's Headers object does not pickle.
_DECODE_HEADERS = ("content-encoding", "x-amz-firehose-request-id",
                   "x-amz-firehose-common-attributes")


@dataclass(frozen=True, slots=True)
class DecodedDelivery:
    """A decoded Firehose request whose events are already rows of the events table."""

    request_id: str
    delivery_key: str
    table: pa.Table


def decode_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a Firehose request's decode reads, as a plain dict (to pickle or keep)."""
    return {name: headers[name] for name in _DECODE_HEADERS if name in headers}


def default_workers() -> int:
    """One worker per core, at most MAX_DEFAULT_WORKERS; none on a single core, where a
    worker could only compete with the server.

    A worker spends part of each request waiting (for the body, for the pipe), so on 2
    cores two workers beside the server ingested more than one (28,492 against 25,170
    events/s over 10 million events, bench/ingest.py, before rows were built in C; the
    one-worker run also had a smaller store memory limit).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return 0 if cores == 1 else min(cores, MAX_DEFAULT_WORKERS)


def decode_in_process(body: bytes, headers: Mapping[str, str], limits: Limits) -> DecodedDelivery:
    """Decode a request in this process (small bodies, or no pool)."""
    request_id, delivery_key, chunks = decode_firehose_rows(body, headers, limits)
    return DecodedDelivery(request_id, delivery_key, table_from_chunks(chunks))


class DecodePool:
    """A pool of `workers` decode processes, started on first use.

    With a `handoff_dir`, workers leave big results in files there (see `handoff`);
    without one, every result comes back through the pool's pipe.
    """

    def __init__(self, workers: int, handoff_dir: Path | None = None) -> None:
        self.workers = workers
        self._handoff_folder = str(handoff_dir) if handoff_dir is not None else None
        self._handoff_failing = False  # said once, not for every request
        self._executor = self._new_executor()
        if self._handoff_folder is not None:
            self._take_handoff_folder(self._handoff_folder, starting=True)

    async def decode_firehose(self, body: bytes, headers: Mapping[str, str],
                              limits: Limits) -> DecodedDelivery:
        """Decode in a worker; if the pool broke (a worker was killed), start a new one
        and decode this request in-process, so the request is not lost to it."""
        wanted = decode_headers(headers)
        self._keep_handoff_folder()
        executor = self._executor
        folder = None if self._handoff_failing else self._handoff_folder
        try:
            future = executor.submit(decode_for_server, body, wanted, limits, folder)
            request_id, delivery_key, rows = await _outcome(executor, future)
        except (BrokenProcessPool, TimeoutError, _WorkerLost) as exc:
            log_fields(log, logging.ERROR, "decode worker failed; restarting the pool",
                       reason=str(exc) or type(exc).__name__)
            self._replace(executor)
            return await asyncio.to_thread(decode_in_process, body, wanted, limits)
        if isinstance(rows, RowsFile):
            try:
                rows = read_rows_file(rows)
            except OSError as exc:  # deleted or cut short behind the server's back
                log_fields(log, logging.ERROR, "decoded rows lost on their way from a "
                           "worker; decoding the request again", reason=str(exc))
                return await asyncio.to_thread(decode_in_process, body, wanted, limits)
        return DecodedDelivery(request_id, delivery_key, table_from_chunks(rows))

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """A new pool instead of `broken`, unless another request has replaced it already."""
        if self._executor is not broken:
            return
        writer = _result_writer(broken)  # before shutdown, which lets go of the queue
        workers = _workers_of(broken)
        broken.shutdown(wait=False, cancel_futures=True)
        # A worker past the decode timeout may be stuck for good. Left alone it kept its
        # core and memory beside the new pool, wrote a late result nobody takes, and
        # held up the server's exit, which waits for every pool. The others' requests
        # fail over to the server too (the pool is broken for them anyway).
        for worker in workers:
            _kill_quietly(worker)
        if writer is not None:
            _close_quietly(writer)
        self._executor = self._new_executor()
        if self._handoff_folder is not None:
            # Results the broken pool's workers wrote (or were writing) that no request
            # will take: deleted once those workers are gone, not left until a restart.
            threading.Thread(target=_remove_results_when_gone, args=(workers, self._handoff_folder),
                             name="trailguard-handoff-cleanup", daemon=True).start()

    def _keep_handoff_folder(self) -> None:
        """Create the hand-over folder again if it was removed while the server runs
        (workers would otherwise fall back to the slower pipe until a restart)."""
        folder = self._handoff_folder
        if folder is None or is_handoff_folder(Path(folder)):
            self._handoff_failing = False
            return
        self._take_handoff_folder(folder, starting=False)

    def _take_handoff_folder(self, folder: str, starting: bool) -> None:
        """Create `folder` or clear what is left in it; where it cannot be had (a file or
        a link in its place), results go through the pipe, said once."""
        try:
            clear_handoff_folder(Path(folder))
        except OSError as exc:
            if not self._handoff_failing:
                log_fields(log, logging.ERROR, "cannot use the decode hand-over folder; "
                           "workers send results through the slower pipe until it can be "
                           "created again", folder=folder, reason=str(exc))
            self._handoff_failing = True
            return
        if not starting:
            log_fields(log, logging.WARNING, "the decode hand-over folder was removed; "
                       "created it again", folder=folder)
        self._handoff_failing = False

    def close(self) -> None:
        executor = self._executor
        # Workers finish what they hold first; one still busy after CLOSE_WAIT_S is
        # killed, so a stuck worker cannot hold up the server's stop.
        killer = threading.Timer(CLOSE_WAIT_S, _kill_all, args=(_workers_of(executor),))
        killer.daemon = True
        killer.start()
        executor.shutdown(wait=True, cancel_futures=True)
        killer.cancel()
        folder = self._handoff_folder
        if folder is not None and is_handoff_folder(Path(folder)):
            clear_handoff_folder(Path(folder))  # results no request came to take, spares

    def _new_executor(self) -> ProcessPoolExecutor:
        # "spawn": the server process has threads (writer, DuckDB, uvicorn), and forking
        # a threaded process can copy a lock in its held state into the child.
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=start_worker, initargs=(os.getpid(),))


class _WorkerLost(Exception):
    """A worker of the pool died while the pool still waits for its answer."""


async def _outcome(executor: ProcessPoolExecutor, future: Future) -> HandedRows:
    """The result of `future`, from a worker of `executor`.

    Raises TimeoutError after DECODE_TIMEOUT_S, and _WorkerLost as soon as any worker of
    the pool has died: a worker killed halfway through sending its rows leaves the pool
    reading the rest forever, never failing the requests it holds (with rows handed back
    as big column buffers, that is where a killed worker most often is).
    """
    waiting = asyncio.wrap_future(future)
    try:
        return await _first_answer(executor, waiting)
    except (TimeoutError, _WorkerLost):
        # Given up on. The pool fails it later (BrokenProcessPool), which asyncio logged
        # as "Future exception was never retrieved" with a traceback: read it then. Not
        # cancelled: cancelling cancels the pool's own future too, and Python 3.11's
        # pool then fails setting its exception (InvalidStateError in its thread).
        waiting.add_done_callback(_read_outcome)
        raise


def _read_outcome(answer: asyncio.Future) -> None:
    if not answer.cancelled():
        answer.exception()


async def _first_answer(executor: ProcessPoolExecutor, waiting: asyncio.Future) -> HandedRows:
    deadline = time.monotonic() + DECODE_TIMEOUT_S
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer from the decode pool in {DECODE_TIMEOUT_S:.0f} s")
        done, _ = await asyncio.wait({waiting}, timeout=min(WORKER_CHECK_S, left))
        if done:
            return waiting.result()
        dead = _dead_workers(executor)
        if dead:
            raise _WorkerLost(f"decode worker {dead[0]} died while the pool waited for it")


def _dead_workers(executor: ProcessPoolExecutor) -> list[int]:
    # Nothing public says that a worker died while the pool is still reading from it.
    return [worker.pid for worker in _workers_of(executor) if worker.exitcode is not None]


def _remove_results_when_gone(workers: list[multiprocessing.Process], folder: str) -> None:
    for worker in workers:
        worker.join(DECODE_TIMEOUT_S)
    for worker in workers:
        if worker.pid is not None and worker.exitcode is not None:
            remove_results_of(folder, worker.pid)


def _workers_of(executor: ProcessPoolExecutor) -> list[multiprocessing.Process]:
    # The pool keeps its worker processes in `_processes` (pid -> Process).
    return list(dict(getattr(executor, "_processes", None) or {}).values())


def _kill_all(workers: list[multiprocessing.Process]) -> None:
    running = [worker for worker in workers if worker.exitcode is None]
    if not running:
        return
    # One stuck worker can keep the others from their stop message too: all are killed.
    log_fields(log, logging.WARNING, f"the decode pool did not stop within {CLOSE_WAIT_S:.0f} "
               "s; killing its workers", pids=",".join(str(worker.pid) for worker in running))
    for worker in running:
        _kill_quietly(worker)


def _kill_quietly(worker: multiprocessing.Process) -> None:
    try:
        worker.kill()
    except (OSError, ValueError):  # gone already, or never started
        pass


def _result_writer(executor: ProcessPoolExecutor) -> Connection | None:
    """This process's end of the pool's result pipe for writing. With every worker gone
    and it closed, a pool thread stuck reading a half-sent result gets end-of-file and
    ends; otherwise it would block the interpreter's exit, which waits for it."""
    return getattr(getattr(executor, "_result_queue", None), "_writer", None)


def _close_quietly(connection: Connection) -> None:
    try:
        connection.close()
    except OSError:
        pass
