"""Hand a decode worker's column buffers to the server through a file, not the pipe.

A decoded 500-record request is ~3.5 MB of column buffers. Sent back through the
process pool's pipe they were pickled and written in the worker, then read in 64 KB
pieces, gathered and unpickled in the server: three copies and many system calls, 16%
of the server's samples at 40k events/s. Written to a file in the data directory
instead, they take one copy in the worker; the server maps the file and wraps the
buffers where they lie (`read_rows_file`). Measured over 300 real requests through two
workers: 2.45 -> 1.5 us of server CPU per event.

Files are written over, not made anew. Writing 3.5 MB into a new file took ~0.85 ms
(the kernel allocates and zeroes every page), into the pages of an existing one ~0.1 ms:
~1.5 us of worker CPU per event. So once the server has let go of a file's rows (the
last view of its map is gone, usually when their group is committed), the file becomes
a spare (`*.spare`), and a worker claims a spare by renaming it before it writes.
Spares are bounded by SPARE_BUDGET_BYTES; past it, a finished file is deleted.
`bench/handoff.py` measures the whole write (layout, claim, write) both ways.

Files live in `HANDOFF_FOLDER` of the data directory, private to the user like the rest
of it. The kernel writes spares' changed pages to disk now and then (by default ~30 s
after they change): at most the 64 MiB budget every ~30 s, ~2 MB/s, under full load
(estimated, not measured). A server killed between a
worker's write and its own read leaves files behind; the next start deletes them and
the spares (`clear_handoff_folder`); so does the server when a broken pool's workers
are gone (`remove_results_of`). Nothing in them is the only copy: every request
is in the spool before it is acknowledged.

This module runs in the workers too, so it never imports pyarrow.
"""

from __future__ import annotations

import itertools
import mmap
import os
import stat
import weakref
from dataclasses import dataclass
from pathlib import Path

from trailguard.store.rows import ColumnBuffers, PackedColumns

HANDOFF_FOLDER = "handoff"
# Smaller results go through the pipe: a file costs a few system calls whatever its size.
MIN_HANDOFF_BYTES = 256 * 1024
# Buffers start at multiples of this, as Arrow recommends (and the column types need 8).
ALIGNMENT = 64
# os.writev takes at most IOV_MAX (1,024 on Linux) buffers at once.
MAX_BUFFERS_PER_WRITE = 512
SPARE_SUFFIX = ".spare"
# Page cache (and disk) the spares may take, all together: about one group commit's
# worth of 500-record requests (~3.5 MB each). The check races with workers claiming
# spares, so the folder can pass it by a file or two.
SPARE_BUDGET_BYTES = 64 * 2**20

# Where one buffer lies in the file: (offset, length).
Span = tuple[int, int]
# A column as `ColumnBuffers`, with spans of the file in place of its buffers.
ColumnSpans = tuple[int, Span | None, Span | None, Span]

_file_numbers = itertools.count()
_spare_numbers = itertools.count()


@dataclass(frozen=True, slots=True)
class RowsFile:
    """Column buffers a worker wrote to `path`, laid out per chunk as `chunks` says."""

    path: str
    size: int
    chunks: tuple[tuple[int, tuple[ColumnSpans, ...]], ...]


def write_rows_file(folder: str, chunks: list[PackedColumns]) -> RowsFile | None:
    """`chunks` written to a new file in `folder`; None when they are too small to be
    worth a file, or the file cannot be written (the caller sends them by pipe then)."""
    layout: list[tuple[int, tuple[ColumnSpans, ...]]] = []
    pieces: list[bytes] = []
    size = 0
    for count, columns in chunks:
        spans: list[ColumnSpans] = []
        for nulls, *buffers in columns:
            placed: list[Span | None] = []
            for buffer in buffers:
                if buffer is None:
                    placed.append(None)
                    continue
                padding = -size % ALIGNMENT
                if padding:
                    pieces.append(bytes(padding))
                    size += padding
                placed.append((size, len(buffer)))
                pieces.append(buffer)
                size += len(buffer)
            spans.append((nulls, placed[0], placed[1], placed[2]))
        layout.append((count, tuple(spans)))
    if size < MIN_HANDOFF_BYTES:
        return None

    path = os.path.join(folder, f"{os.getpid()}-{next(_file_numbers)}.rows")
    try:
        _write_all(path, pieces, size, reused=_claim_spare(folder, path))
    except OSError:
        # A full disk or a missing folder: the pipe still works, and the server then
        # has the rows as before.
        _remove_quietly(path)
        return None
    return RowsFile(path, size, tuple(layout))


def read_rows_file(rows_file: RowsFile) -> list[PackedColumns]:
    """The chunks of `rows_file`, their buffers views of the mapped file (no copy).

    Once the last view is gone, the file becomes a spare for workers to write over, or
    is deleted (`_retire`). Raises OSError when the file is gone or shorter than
    written; it is deleted then.
    """
    try:
        descriptor = _open_plain_file(rows_file.path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        _remove_quietly(rows_file.path)
        raise
    try:
        if os.fstat(descriptor).st_size != rows_file.size:
            raise OSError(f"{rows_file.path} does not hold the {rows_file.size} bytes "
                          "its worker wrote")
        mapped = mmap.mmap(descriptor, rows_file.size, access=mmap.ACCESS_READ)
    except BaseException:
        _remove_quietly(rows_file.path)
        raise
    finally:
        os.close(descriptor)
    # Views and the Arrow buffers made of them hold the map; the map is unmapped, and
    # this called, when the last of them goes. Not at exit: the pool's close clears up.
    weakref.finalize(mapped, _retire, rows_file.path).atexit = False
    whole = memoryview(mapped)
    return [(count, tuple(_column(whole, column) for column in columns))
            for count, columns in rows_file.chunks]


def is_handoff_folder(folder: Path) -> bool:
    """Whether `folder` is a directory of its own (a link to one elsewhere is not used:
    files there would be written over and deleted)."""
    try:
        return stat.S_ISDIR(folder.lstat().st_mode)
    except OSError:
        return False


def clear_handoff_folder(folder: Path) -> None:
    """Create `folder`, or delete what an earlier run left in it (only `*.rows` files
    and spares). Raises OSError when something else, a link included, is in its place."""
    folder.mkdir(mode=0o700, exist_ok=True)
    if not is_handoff_folder(folder):
        raise OSError(f"{folder} is a link or a file, not a folder of its own")
    for pattern in ("*.rows", f"*{SPARE_SUFFIX}"):
        for leftover in folder.glob(pattern):
            _remove_quietly(str(leftover))


def remove_results_of(folder: str, pid: int) -> None:
    """Delete the files worker `pid` wrote into `folder` (it is gone; nobody takes them)."""
    for leftover in Path(folder).glob(f"{pid}-*.rows"):
        _remove_quietly(str(leftover))


def _column(whole: memoryview, column: ColumnSpans) -> ColumnBuffers:
    nulls, validity, offsets, data = column
    return (nulls, _view(whole, validity), _view(whole, offsets), _view(whole, data))


def _view(whole: memoryview, span: Span | None) -> memoryview | None:
    if span is None:
        return None
    start, length = span
    return whole[start:start + length]


def _claim_spare(folder: str, path: str) -> bool:
    """Rename a spare of `folder` to `path`; False when there is none to take."""
    try:
        with os.scandir(folder) as entries:
            # Only plain files: a link or a pipe planted in the folder is never written.
            spares = [entry.path for entry in entries if entry.name.endswith(SPARE_SUFFIX)
                      and entry.is_file(follow_symlinks=False)]
    except OSError:
        return False
    for spare in spares:
        try:
            os.rename(spare, path)  # atomic: of two workers after one spare, one wins
            return True
        except OSError:
            continue
    return False


def _retire(path: str) -> None:
    """Keep the file at `path`, whose rows nobody reads any more, as a spare while the
    spares stay within their budget; delete it otherwise."""
    folder = os.path.dirname(path)
    try:
        if _spare_bytes(folder) + os.path.getsize(path) <= SPARE_BUDGET_BYTES:
            name = f"{os.getpid()}-{next(_spare_numbers)}{SPARE_SUFFIX}"
            os.rename(path, os.path.join(folder, name))
            return
    except OSError:  # gone already (a cleared folder): nothing to keep
        pass
    _remove_quietly(path)


def _spare_bytes(folder: str) -> int:
    total = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(SPARE_SUFFIX):
                try:
                    total += entry.stat().st_size
                except OSError:  # claimed by a worker just now
                    continue
    return total


def _open_plain_file(path: str, flags: int) -> int:
    """`path` opened with `flags`, refusing (OSError) anything but a regular file of one
    name: neither a link is followed, nor a pipe waited on, nor a file that is also
    elsewhere (a hard link) written over."""
    descriptor = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
        os.close(descriptor)
        raise OSError(f"{path} is not a regular file of its own")
    return descriptor


def _write_all(path: str, pieces: list[bytes], size: int, reused: bool) -> None:
    """Write `pieces` (`size` bytes in all) as the whole content of `path`: a new file,
    or a claimed spare, which is written over and cut to `size`."""
    flags = os.O_WRONLY | os.O_CLOEXEC
    descriptor = (_open_plain_file(path, flags) if reused
                  else os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        for first in range(0, len(pieces), MAX_BUFFERS_PER_WRITE):
            batch = pieces[first:first + MAX_BUFFERS_PER_WRITE]
            written = os.writev(descriptor, batch)
            expected = sum(len(piece) for piece in batch)
            if written != expected:  # a regular file writes all or fails, but be sure
                _write_rest(descriptor, b"".join(batch)[written:])
        if reused:
            os.ftruncate(descriptor, size)
    finally:
        os.close(descriptor)


def _write_rest(descriptor: int, rest: bytes) -> None:
    view = memoryview(rest)
    while view:
        view = view[os.write(descriptor, view):]


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
