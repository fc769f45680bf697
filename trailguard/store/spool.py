"""Acknowledged deliveries kept on disk until the store has committed them.

The store writes fastest in big transactions: with 16,000 rows or more DuckDB compresses
whole row groups straight into the file, where small commits go through its write-ahead
log and a checkpoint (20 against 11 us of CPU per event, measured). A sender waits for
its answer, though, and Firehose keeps only a few requests in flight, so transactions
that wait for that many rows would keep it waiting for seconds. The spool lets both
happen: each request body is appended to a segment file and fsync'd, which is when the
sender hears 200; the rows go to the store in one transaction per segment, after which
the segment is deleted. A segment still on disk at start-up holds requests that were
acknowledged but maybe not committed: they are decoded and written again, and request
keys make that idempotent.

A segment is a sequence of frames: a header (magic, lengths, CRC-32), a JSON object
saying how to decode the payload, and the payload (the request body as received). A
frame cut short by a crash was never acknowledged, so reading stops there.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from trailguard.logs import log_fields

log = logging.getLogger("trailguard.store.spool")

_MAGIC = b"TGS1"
_HEADER = struct.Struct("<4sIII")  # magic, meta bytes, payload bytes, CRC-32 of both
_SUFFIX = ".spool"
QUARANTINE_DIR = "unreadable"


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One acknowledged request as it came in, with what decoding it again needs."""

    kind: str  # which receiver decodes it: "firehose" or "logapi"
    meta: dict[str, Any]  # that decode's other inputs (headers, the time it arrived)
    payload: bytes  # the request body exactly as received


class Spool:
    """Segment files in one directory; one segment is open for appending at a time.

    Not thread-safe: the group-commit writer serialises its calls.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._current: BinaryIO | None = None
        self._current_path: Path | None = None
        existing = self.leftover_segments()
        self._next_number = int(existing[-1].stem) + 1 if existing else 1

    def leftover_segments(self) -> list[Path]:
        """Segments on disk (left by an earlier run, when called at start), oldest first."""
        return sorted(path for path in self.directory.glob(f"*{_SUFFIX}")
                      if path.stem.isdigit())

    def append(self, records: list[SpoolRecord]) -> None:
        """Write `records` to the open segment and fsync it: once this returns they
        survive a crash. Raises OSError (disk full, I/O error); then none of them
        counts as kept, though some bytes may be on disk (a reader skips a torn tail,
        and a request acknowledged by nobody is retried by its sender)."""
        segment = self._open_segment()
        segment.write(b"".join(_frame(record) for record in records))
        segment.flush()
        os.fsync(segment.fileno())

    def rotate(self) -> Path | None:
        """Close the open segment and return it (None when none is open); the next
        append starts a new one. The caller deletes it, with `release`, once everything
        it holds is committed."""
        if self._current is None:
            return None
        self._current.close()
        closed, self._current, self._current_path = self._current_path, None, None
        return closed

    def release(self, segments: list[Path]) -> None:
        """What `segments` hold is committed to the store: delete them."""
        for segment in segments:
            segment.unlink(missing_ok=True)

    def quarantine(self, record: SpoolRecord, reason: str) -> Path:
        """Keep `record` aside, as a segment of its own under `unreadable/`, when the store
        refuses it for good: it was acknowledged, so it is never deleted."""
        folder = self.directory / QUARANTINE_DIR
        folder.mkdir(exist_ok=True)
        path = folder / f"{self._next_number:012d}{_SUFFIX}"
        self._next_number += 1
        with path.open("wb") as out:
            out.write(_frame(record))
            out.flush()
            os.fsync(out.fileno())
        log_fields(log, logging.ERROR, "acknowledged delivery set aside; the store refuses it",
                   kind=record.kind, path=str(path), reason=reason)
        return path

    def close(self) -> None:
        """Close the open segment, keeping it: what it holds was not committed."""
        if self._current is not None:
            self._current.close()
            self._current = self._current_path = None

    def _open_segment(self) -> BinaryIO:
        if self._current is None:
            path = self.directory / f"{self._next_number:012d}{_SUFFIX}"
            self._next_number += 1
            self._current = path.open("ab")
            self._current_path = path
            _fsync_directory(self.directory)  # the new name must survive a crash too
        return self._current


def read_segment(path: Path) -> Iterator[SpoolRecord]:
    """The records of one segment, stopping at a frame cut short or damaged (a crash
    mid-append: that request was never acknowledged)."""
    with path.open("rb") as segment:
        data = segment.read()
    position = 0
    while position + _HEADER.size <= len(data):
        magic, meta_size, payload_size, checksum = _HEADER.unpack_from(data, position)
        start = position + _HEADER.size
        end = start + meta_size + payload_size
        if magic != _MAGIC or end > len(data) or zlib.crc32(data[start:end]) != checksum:
            log_fields(log, logging.WARNING, "spool segment ends in an incomplete frame",
                       path=str(path), offset=position)
            return
        meta = orjson.loads(data[start:start + meta_size])
        yield SpoolRecord(meta.pop("kind"), meta, data[start + meta_size:end])
        position = end


def _frame(record: SpoolRecord) -> bytes:
    meta = orjson.dumps({**record.meta, "kind": record.kind})
    body = meta + record.payload
    return _HEADER.pack(_MAGIC, len(meta), len(record.payload), zlib.crc32(body)) + body


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
