"""Decode big Firehose requests in worker processes.

Turning a request into rows is pure Python (JSON walk, flattening, dedup keys) and holds
the GIL for ~100 us per event, so in threads it caps ingest at one core however many the
machine has. Worker processes decode in parallel and hand back the rows as an Arrow table
in IPC format (cheap to pass and to read), leaving the server process to de-duplicate
and insert. Small requests are decoded in the request's thread: for them a round trip to
a worker costs more than it saves.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import pyarrow as pa

from trailguard.ingest.firehose import Limits, decode_request
from trailguard.logs import log_fields
from trailguard.store.arrow_rows import events_to_table, table_from_ipc, table_to_ipc

log = logging.getLogger("trailguard.ingest")

# Bodies smaller than this (compressed) are decoded in-process.
POOL_MIN_BODY_BYTES = 64 * 1024
ORPHAN_CHECK_S = 0.5
# The request headers decode_request reads; Starlette's Headers object does not pickle.
_DECODE_HEADERS = ("content-encoding", "x-amz-firehose-request-id",
                   "x-amz-firehose-common-attributes")


@dataclass(frozen=True, slots=True)
class DecodedDelivery:
    """A decoded Firehose request whose events are already rows of the events table."""

    request_id: str
    delivery_key: str
    table: pa.Table


def default_workers() -> int:
    """One worker per core but one: the server process keeps a core for the store's inserts
    (measured on 2 cores: one worker ingests as fast as two, with 150 MiB less memory).
    None on a single core, where a worker could only compete with the server."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, (cores or 1) - 1)


def decode_firehose_rows(body: bytes, headers: Mapping[str, str],
                         limits: Limits) -> tuple[str, str, bytes]:
    """Decode one Firehose request into (request id, delivery key, Arrow IPC rows).

    Runs in a worker process; raises `IngestError` exactly as `decode_request` does.
    """
    decoded = decode_in_process(body, headers, limits)
    return decoded.request_id, decoded.delivery_key, table_to_ipc(decoded.table)


def decode_in_process(body: bytes, headers: Mapping[str, str], limits: Limits) -> DecodedDelivery:
    """`decode_firehose_rows` without a worker (small bodies, or no pool)."""
    batch = decode_request(body, headers, limits)
    return DecodedDelivery(batch.request_id, batch.delivery_key, events_to_table(batch.events))


class DecodePool:
    """A pool of `workers` decode processes, started on first use."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor = self._new_executor()

    async def decode_firehose(self, body: bytes, headers: Mapping[str, str],
                              limits: Limits) -> DecodedDelivery:
        """Decode in a worker; if the pool broke (a worker was killed), start a new one
        and decode this request in-process, so the request is not lost to it."""
        wanted = {name: headers[name] for name in _DECODE_HEADERS if name in headers}
        try:
            future = self._executor.submit(decode_firehose_rows, body, wanted, limits)
            request_id, delivery_key, rows = await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            log_fields(log, logging.ERROR, "decode worker died; restarting the pool",
                       reason=str(exc))
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
            return await asyncio.to_thread(decode_in_process, body, wanted, limits)
        return DecodedDelivery(request_id, delivery_key, table_from_ipc(rows))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _new_executor(self) -> ProcessPoolExecutor:
        # "spawn": the server process has threads (writer, DuckDB, uvicorn), and forking
        # a threaded process can copy a lock in its held state into the child.
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(os.getpid(),))


def _start_worker(server_pid: int) -> None:
    # Ctrl-C reaches the whole process group; the server decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker holds both ends of its task pipe, so a SIGKILLed server never gives it
    # EOF: it watches for being orphaned instead of waiting forever.
    threading.Thread(target=_exit_when_orphaned, args=(server_pid,), daemon=True,
                     name="orphan-watch").start()


def _exit_when_orphaned(server_pid: int) -> None:
    while os.getppid() == server_pid:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(0)
