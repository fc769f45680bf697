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
frame cut short at the end of a segment is a crash mid-append: never acknowledged, so it
is dropped. Any other damage costs only the damaged frame: the reader resumes at the next
intact frame, and the segment is then kept under `unreadable/` rather than deleted.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from trailguard.errors import StoreError
from trailguard.logs import log_fields

log = logging.getLogger("trailguard.store.spool")

_MAGIC = b"TGS2"
# magic, meta bytes, payload bytes, CRC-32 of meta and payload, CRC-32 of the header before
# it: a frame whose header checks out but whose body runs past the end of the file was cut
# short by a crash, where a damaged length would otherwise look the same.
_HEADER = struct.Struct("<4sIIII")
_HEADER_CHECKED = struct.Struct("<4sIII")
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
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot use {self.directory} as the ingest spool folder: {exc}"
                             ) from exc
        self._current: BinaryIO | None = None
        self._current_path: Path | None = None
        # Segments closed early (an append failed) whose deliveries are not committed.
        self._retired: list[Path] = []
        existing = self.leftover_segments()
        self._next_number = int(existing[-1].stem) + 1 if existing else 1

    def leftover_segments(self) -> list[Path]:
        """Segments on disk (left by an earlier run, when called at start), oldest first."""
        return leftover_segments(self.directory)

    def append(self, records: list[SpoolRecord]) -> None:
        """Write `records` to the open segment and fsync it: once this returns they
        survive a crash. Raises OSError (disk full, I/O error); then none of them
        counts as kept. The segment is cut back to where it was, or, when even that
        fails, closed, so that later records never follow a damaged frame."""
        segment = self._open_segment()
        offset = segment.tell()
        try:
            _write_all(segment, b"".join(_frame(record) for record in records))
            os.fsync(segment.fileno())
        except OSError:
            self._cut_back(segment, offset)
            raise

    def rotate(self) -> list[Path]:
        """Close the open segment; return it with any closed early. The next append
        starts a new one. The caller deletes them, with `release`, once everything they
        hold is committed."""
        closed, self._retired = self._retired, []
        if self._current is not None and self._current_path is not None:
            self._current.close()
            closed.append(self._current_path)
            self._current = self._current_path = None
        return closed

    def release(self, segments: list[Path]) -> None:
        """What `segments` hold is committed to the store: delete them. Raises OSError;
        a segment left behind is written again at the next start, and request keys
        make that a replay."""
        for segment in segments:
            segment.unlink(missing_ok=True)

    def set_aside(self, segment: Path, reason: str) -> Path:
        """Move a damaged segment under `unreadable/` (its intact records were written)."""
        target = self._aside_path()
        os.replace(segment, target)
        log_fields(log, logging.ERROR, "damaged spool segment set aside; its intact "
                   "requests were stored", path=str(target), reason=reason)
        return target

    def quarantine(self, record: SpoolRecord, reason: str) -> Path:
        """Keep `record` aside, as a segment of its own under `unreadable/`, when it
        cannot be stored: it was acknowledged, so it is never deleted. Moved back into
        the spool folder, it is tried again at the next start."""
        target = self._aside_path()
        with target.open("xb") as out:
            out.write(_frame(record))
            out.flush()
            os.fsync(out.fileno())
        log_fields(log, logging.ERROR, "acknowledged request set aside, not stored",
                   kind=record.kind, path=str(target), reason=reason)
        return target

    def close(self) -> None:
        """Close the open segment, keeping it: what it holds was not committed."""
        if self._current is not None:
            self._current.close()
            self._current = self._current_path = None

    def _open_segment(self) -> BinaryIO:
        if self._current is None:
            path = self.directory / f"{self._next_number:012d}{_SUFFIX}"
            self._next_number += 1
            # Unbuffered: a failed write leaves nothing in a buffer that a later flush
            # (or close) would try again and fail on.
            self._current = path.open("ab", buffering=0)
            self._current_path = path
            _fsync_directory(self.directory)  # the new name must survive a crash too
        return self._current

    def _cut_back(self, segment: BinaryIO, offset: int) -> None:
        try:
            os.ftruncate(segment.fileno(), offset)
            segment.seek(offset)
            os.fsync(segment.fileno())
        except OSError:
            # Start a new segment for what comes next; this one keeps what it held.
            if self._current_path is not None:
                self._retired.append(self._current_path)
            self._current = self._current_path = None
            try:
                segment.close()
            except OSError:
                pass

    def _aside_path(self) -> Path:
        """A new name under `unreadable/`, never one already there (names are numbers
        from the clock, so a set-aside file moved back sorts after older segments)."""
        folder = self.directory / QUARANTINE_DIR
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot set a request aside in {folder}: {exc}") from exc
        number = time.time_ns()
        while (folder / f"{number}{_SUFFIX}").exists():
            number += 1
        return folder / f"{number}{_SUFFIX}"


def leftover_segments(directory: Path) -> list[Path]:
    """The segments in a spool folder, oldest first (none when it does not exist)."""
    found = [path for path in Path(directory).glob(f"*{_SUFFIX}")
             if path.stem.isdigit() and path.is_file()]
    return sorted(found, key=lambda path: int(path.stem))


@dataclass(slots=True)
class SegmentContents:
    """What `read_segment` found: the intact records, and whether anything else was there
    (a frame cut short at the end is a crash mid-append; bytes elsewhere are damage)."""

    records: list[SpoolRecord]
    damaged: bool = False
    torn_tail: bool = False


def read_segment(path: Path) -> SegmentContents:
    """The intact records of one segment. A damaged frame is skipped by looking for the
    next frame header whose checksum holds, so one bad frame costs only itself."""
    data = path.read_bytes()
    contents = SegmentContents([])
    position = 0
    while position < len(data):
        record, end = _frame_at(data, position)
        if record is not None:
            contents.records.append(record)
            position = end
            continue
        following = data.find(_MAGIC, position + 1)
        while following != -1 and _frame_at(data, following)[0] is None:
            following = data.find(_MAGIC, following + 1)
        if following == -1:
            # Nothing intact after it. A frame whose header checks out but whose body runs
            # past the end was cut short by a crash while being appended: never
            # acknowledged. Anything else is damage.
            contents.torn_tail = _header_intact(data, position) and end > len(data)
            contents.damaged = contents.damaged or not contents.torn_tail
            if contents.torn_tail:
                log_fields(log, logging.WARNING, "spool segment ends in a frame cut short "
                           "(a request being appended when the server stopped; it was not "
                           "acknowledged)", path=str(path), offset=position)
            break
        contents.damaged = True
        log_fields(log, logging.ERROR, "damaged frame in a spool segment skipped",
                   path=str(path), offset=position, skipped_bytes=following - position)
        position = following
    return contents


def _frame_at(data: bytes, position: int) -> tuple[SpoolRecord | None, int]:
    """The record framed at `position` and where its frame ends; None for the record
    when the frame is cut short, fails a checksum, or holds no valid metadata (the end
    is then where the header says it would be)."""
    if position + _HEADER.size > len(data):
        return None, position + _HEADER.size
    _, meta_size, payload_size, checksum, _ = _HEADER.unpack_from(data, position)
    start = position + _HEADER.size
    end = start + meta_size + payload_size
    if (not _header_intact(data, position) or end > len(data)
            or zlib.crc32(data[start:end]) != checksum):
        return None, end
    try:
        meta = orjson.loads(data[start:start + meta_size])
        kind = meta.pop("kind")
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        return None, end
    if not isinstance(kind, str):
        return None, end
    return SpoolRecord(kind, meta, data[start + meta_size:end]), end


def _header_intact(data: bytes, position: int) -> bool:
    """Whether a whole header starts at `position`, with its magic and its own checksum."""
    if position + _HEADER.size > len(data):
        # Cut short inside the header itself: intact as far as it goes when it starts
        # like a frame.
        return _MAGIC.startswith(data[position:position + len(_MAGIC)])
    fields = data[position:position + _HEADER_CHECKED.size]
    (header_checksum,) = struct.unpack_from("<I", data, position + _HEADER_CHECKED.size)
    return fields[:len(_MAGIC)] == _MAGIC and zlib.crc32(fields) == header_checksum


def _frame(record: SpoolRecord) -> bytes:
    meta = orjson.dumps({**record.meta, "kind": record.kind})
    body = meta + record.payload
    fields = _HEADER_CHECKED.pack(_MAGIC, len(meta), len(record.payload), zlib.crc32(body))
    return fields + struct.pack("<I", zlib.crc32(fields)) + body


def _write_all(segment: BinaryIO, data: bytes) -> None:
    """Write all of `data` (an unbuffered file may take part of it per call)."""
    view = memoryview(data)
    while view:
        written = segment.write(view)
        if not written:
            raise OSError("the spool segment took no bytes")
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
