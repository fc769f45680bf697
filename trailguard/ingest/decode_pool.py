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

from trailguard.events import Event
from trailguard.ingest.firehose import Limits, read_request
from trailguard.logs import log_fields
from trailguard.store.arrow_rows import (
    PackedEvent,
    events_to_table,
    table_from_ipc,
    table_to_ipc,
)

log = logging.getLogger("trailguard.ingest")

# Bodies smaller than this (compressed) are decoded in-process.
POOL_MIN_BODY_BYTES = 64 * 1024
# Rows are built every CHUNK_WEIGHT packed events, or a tenth as many unpacked `Event`s.
CHUNK_WEIGHT = 1_000
EVENT_WEIGHT = 10
# A 64 MiB request (Firehose's largest) decodes in seconds; a worker silent this long is
# taken for lost, and the request is decoded in the server instead.
DECODE_TIMEOUT_S = 120.0
# Each worker peaks near 150 MiB; past this many, more would add memory, not speed.
MAX_DEFAULT_WORKERS = 8
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


def decode_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a Firehose request's decode reads, as a plain dict (to pickle or keep)."""
    return {name: headers[name] for name in _DECODE_HEADERS if name in headers}


def default_workers() -> int:
    """One worker per core, at most MAX_DEFAULT_WORKERS; none on a single core, where a
    worker could only compete with the server.

    A worker spends part of each request waiting (for the body, for the pipe), so on 2
    cores two workers beside the server ingested more than one (28,492 against 25,170
    events/s over 10 million events, bench/ingest.py; the one-worker run also had a smaller
    store memory limit), though the server needs about half the CPU per event.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return 0 if cores == 1 else min(cores, MAX_DEFAULT_WORKERS)


def decode_firehose_rows(body: bytes, headers: Mapping[str, str],
                         limits: Limits) -> tuple[str, str, bytes]:
    """Decode one Firehose request into (request id, delivery key, Arrow IPC rows).

    Runs in a worker process; raises `IngestError` exactly as `decode_request` does.
    """
    decoded = decode_in_process(body, headers, limits)
    return decoded.request_id, decoded.delivery_key, table_to_ipc(decoded.table)


def decode_in_process(body: bytes, headers: Mapping[str, str], limits: Limits) -> DecodedDelivery:
    """`decode_firehose_rows` without a worker (small bodies, or no pool).

    Events become rows every CHUNK_WEIGHT: a decoded `Event` takes ~20 times its row's
    memory as Python objects (a 500-finding request peaked at 44 MiB at once), a
    `PackedEvent` about its row's. Fewer, bigger chunks cost less CPU per row to convert.
    """
    request = read_request(body, headers, limits)
    tables: list[pa.Table] = []
    pending: list[Event | PackedEvent] = []
    weight = 0
    for events in request.events_by_record(packed=True):
        pending.extend(events)
        weight += sum(1 if type(event) is PackedEvent else EVENT_WEIGHT for event in events)
        if weight >= CHUNK_WEIGHT:
            tables.append(events_to_table(pending))
            pending, weight = [], 0
    if pending or not tables:
        tables.append(events_to_table(pending))
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    return DecodedDelivery(request.request_id, request.delivery_key, table)


class DecodePool:
    """A pool of `workers` decode processes, started on first use."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor = self._new_executor()

    async def decode_firehose(self, body: bytes, headers: Mapping[str, str],
                              limits: Limits) -> DecodedDelivery:
        """Decode in a worker; if the pool broke (a worker was killed), start a new one
        and decode this request in-process, so the request is not lost to it."""
        wanted = decode_headers(headers)
        try:
            future = self._executor.submit(decode_firehose_rows, body, wanted, limits)
            request_id, delivery_key, rows = await asyncio.wait_for(
                asyncio.wrap_future(future), DECODE_TIMEOUT_S)
        except (BrokenProcessPool, TimeoutError) as exc:
            # A worker died, or the pool stopped answering (a worker killed halfway
            # through sending its rows leaves the pool reading forever).
            log_fields(log, logging.ERROR, "decode worker failed; restarting the pool",
                       reason=str(exc) or type(exc).__name__)
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
    # Ctrl-C, and SIGTERM from `systemctl stop` or `timeout`, reach the whole process group
    # (or cgroup); the server decides when workers stop. A worker ended by them in the
    # middle of sending rows back would leave the pool waiting for the rest forever.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Arrow's default allocator (mimalloc) keeps freed buffers for reuse: ~30 MiB more
    # peak RSS per worker than the C library's malloc, for no measurable speed here.
    pa.set_memory_pool(pa.system_memory_pool())
    # A worker holds both ends of its task pipe, so a SIGKILLed server never gives it
    # EOF: it watches for being orphaned instead of waiting forever.
    threading.Thread(target=_exit_when_orphaned, args=(server_pid,), daemon=True,
                     name="orphan-watch").start()


def _exit_when_orphaned(server_pid: int) -> None:
    while os.getppid() == server_pid:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(0)
