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
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import pyarrow as pa

from trailguard.ingest.decode_rows import decode_firehose_rows, start_worker
from trailguard.ingest.firehose import Limits
from trailguard.logs import log_fields
from trailguard.store.arrow_rows import table_from_chunks

log = logging.getLogger("trailguard.ingest")

# Bodies smaller than this (compressed) are decoded in-process.
POOL_MIN_BODY_BYTES = 64 * 1024
# A 64 MiB request (Firehose's largest) decodes in seconds; a worker silent this long is
# taken for lost, and the request is decoded in the server instead.
DECODE_TIMEOUT_S = 120.0
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
    events/s over 10 million events, bench/ingest.py; the one-worker run also had a smaller
    store memory limit), though the server needs about half the CPU per event.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return 0 if cores == 1 else min(cores, MAX_DEFAULT_WORKERS)


def decode_in_process(body: bytes, headers: Mapping[str, str], limits: Limits) -> DecodedDelivery:
    """Decode a request in this process (small bodies, or no pool)."""
    request_id, delivery_key, chunks = decode_firehose_rows(body, headers, limits)
    return DecodedDelivery(request_id, delivery_key, table_from_chunks(chunks))


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
            request_id, delivery_key, chunks = await asyncio.wait_for(
                asyncio.wrap_future(future), DECODE_TIMEOUT_S)
        except (BrokenProcessPool, TimeoutError) as exc:
            # A worker died, or the pool stopped answering (a worker killed halfway
            # through sending its rows leaves the pool reading forever).
            log_fields(log, logging.ERROR, "decode worker failed; restarting the pool",
                       reason=str(exc) or type(exc).__name__)
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
            return await asyncio.to_thread(decode_in_process, body, wanted, limits)
        return DecodedDelivery(request_id, delivery_key, table_from_chunks(chunks))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _new_executor(self) -> ProcessPoolExecutor:
        # "spawn": the server process has threads (writer, DuckDB, uvicorn), and forking
        # a threaded process can copy a lock in its held state into the child.
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=start_worker, initargs=(os.getpid(),))
