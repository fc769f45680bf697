"""Decode one Firehose request into rows of the events table: the work of a decode worker.

Runs in a worker process (see `decode_pool`) or, for small requests, in the server. It
hands back plain bytes and tuples, never Arrow objects: a worker never imports pyarrow,
which alone took ~95 MiB of each worker's memory once used. The server wraps the column
buffers as a table without copying them (`arrow_rows.table_from_chunks`).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping

from trailguard.ingest.firehose import Limits, read_request
from trailguard.ingest.handoff import RowsFile, write_rows_file
from trailguard.runtime import settle_collector
from trailguard.store.rows import NATIVE_ROWS, PackedColumns, PackedEvent, pack_columns, pack_event

# Rows are packed into columns every CHUNK_ROWS events, so a request's events are never
# all held as Python objects at once (a 500-finding request once peaked at 44 MiB so).
CHUNK_ROWS = 1_000
ORPHAN_CHECK_S = 0.5

# What a request decodes to: (request id, delivery key, chunks of rows). A chunk is the
# column buffers of its rows (`pack_columns`), or, where the C module is not built, the
# rows themselves.
RowChunk = PackedColumns | list[PackedEvent]
DecodedRows = tuple[str, str, list[RowChunk]]
# What a worker sends back: the same, or with the chunks left in a file (see `handoff`).
HandedRows = tuple[str, str, list[RowChunk] | RowsFile]


def decode_firehose_rows(body: bytes, headers: Mapping[str, str], limits: Limits) -> DecodedRows:
    """Decode one Firehose request into its rows; raises `IngestError` as `read_request`
    and the record decoding do (nothing is stored)."""
    request = read_request(body, headers, limits)
    chunks: list[RowChunk] = []
    pending: list[PackedEvent] = []
    for events in request.events_by_record(packed=True):
        pending.extend(pack_event(event) for event in events)
        if len(pending) >= CHUNK_ROWS:
            chunks.append(_chunk(pending))
            pending = []
    if pending or not chunks:
        chunks.append(_chunk(pending))
    return request.request_id, request.delivery_key, chunks


def decode_for_server(body: bytes, headers: Mapping[str, str], limits: Limits,
                      handoff_folder: str | None) -> HandedRows:
    """`decode_firehose_rows` in a worker: the column buffers are left in a file of
    `handoff_folder` where there is one and they are big enough (see `handoff`)."""
    request_id, delivery_key, chunks = decode_firehose_rows(body, headers, limits)
    if handoff_folder is not None and NATIVE_ROWS:
        rows_file = write_rows_file(handoff_folder, chunks)
        if rows_file is not None:
            return request_id, delivery_key, rows_file
    return request_id, delivery_key, chunks


def _chunk(rows: list[PackedEvent]) -> RowChunk:
    return pack_columns(rows) if NATIVE_ROWS else rows


def start_worker(server_pid: int) -> None:
    """Set up a decode worker process (the pool's initializer)."""
    # Ctrl-C, and SIGTERM from `systemctl stop` or `timeout`, reach the whole process group
    # (or cgroup); the server decides when workers stop. A worker ended by them in the
    # middle of sending rows back would leave the pool waiting for the rest forever.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A worker holds both ends of its task pipe, so a SIGKILLed server never gives it
    # EOF: it watches for being orphaned instead of waiting forever.
    threading.Thread(target=_exit_when_orphaned, args=(server_pid,), daemon=True,
                     name="orphan-watch").start()
    settle_collector()


def _exit_when_orphaned(server_pid: int) -> None:
    while os.getppid() == server_pid:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(0)
