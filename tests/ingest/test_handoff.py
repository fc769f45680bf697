"""Decoded rows handed from a worker to the server in a file: the same rows, and the file
written over by the next result rather than made anew."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
from pathlib import Path

import pytest
from firehose_client import (
    BIG_REQUEST_RECORDS,
    BIG_REQUEST_START_MS,
    big_cloudtrail_request,
    firehose_body,
)

from trailguard.generate import generate_cloudtrail
from trailguard.ingest import handoff
from trailguard.ingest.decode_pool import DecodePool, decode_in_process
from trailguard.ingest.decode_rows import decode_firehose_rows
from trailguard.ingest.firehose import Limits
from trailguard.ingest.handoff import (
    MIN_HANDOFF_BYTES,
    RowsFile,
    clear_handoff_folder,
    read_rows_file,
    write_rows_file,
)
from trailguard.store.arrow_rows import table_from_chunks
from trailguard.store.rows import NATIVE_ROWS

GZIP = {"content-encoding": "gzip"}

pytestmark = pytest.mark.skipif(not NATIVE_ROWS, reason="rows are handed over in files only "
                                "as the C module's column buffers; it is not built here")


def big_chunks(number: int = 1) -> list:
    _, _, chunks = decode_firehose_rows(big_cloudtrail_request(number)[1], GZIP, Limits())
    return chunks


def chunks_of(records: int, seed: int) -> list:
    """The decoded rows of a request of `records` generated CloudTrail records."""
    generated = generate_cloudtrail(seed, BIG_REQUEST_START_MS, BIG_REQUEST_START_MS + 60_000,
                                    records)
    body = firehose_body([json.dumps(record).encode() for record in generated],
                         f"sized-{seed}", BIG_REQUEST_START_MS)
    return decode_firehose_rows(json.dumps(body).encode(), {}, Limits())[2]


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_rows_file_reads_back_as_the_same_table_and_becomes_a_spare(tmp_path: Path) -> None:
    chunks = big_chunks()

    rows_file = write_rows_file(str(tmp_path), chunks)
    assert isinstance(rows_file, RowsFile)
    assert rows_file.size >= MIN_HANDOFF_BYTES
    read = read_rows_file(rows_file)
    views = [buffer for _, columns in read for column in columns for buffer in column[1:]
             if buffer is not None]
    table = table_from_chunks(read)
    assert table.equals(table_from_chunks(chunks))
    assert views and all(isinstance(view, memoryview) for view in views)

    del read, views
    gc.collect()
    while_the_table_is_held = names(tmp_path)
    del table
    gc.collect()

    assert while_the_table_is_held == [os.path.basename(rows_file.path)]
    spares = names(tmp_path)
    assert len(spares) == 1 and spares[0].endswith(handoff.SPARE_SUFFIX)


def test_a_spare_is_written_over_and_cut_to_the_new_size(tmp_path: Path) -> None:
    big, small = chunks_of(600, 1), chunks_of(200, 2)

    first = write_rows_file(str(tmp_path), big)
    inode = os.stat(first.path).st_ino
    read_rows_file(first)  # dropped at once: the file becomes a spare
    gc.collect()

    second = write_rows_file(str(tmp_path), small)
    assert second.size < first.size
    assert os.stat(second.path).st_ino == inode  # the same file, not a new one
    assert os.path.getsize(second.path) == second.size
    assert names(tmp_path) == [os.path.basename(second.path)]  # the spare was claimed
    assert table_from_chunks(read_rows_file(second)).equals(table_from_chunks(small))
    gc.collect()

    third = write_rows_file(str(tmp_path), big)  # grows back
    assert os.stat(third.path).st_ino == inode
    assert table_from_chunks(read_rows_file(third)).equals(table_from_chunks(big))


def test_spares_stay_within_their_budget(tmp_path: Path, monkeypatch) -> None:
    chunks = big_chunks()
    files = [write_rows_file(str(tmp_path), chunks) for _ in range(3)]
    monkeypatch.setattr(handoff, "SPARE_BUDGET_BYTES", files[0].size * 2)

    held = [read_rows_file(rows_file) for rows_file in files]
    assert len(names(tmp_path)) == 3
    del held
    gc.collect()

    spares = list(tmp_path.iterdir())
    assert len(spares) == 2  # the third would pass the budget: deleted
    assert all(path.name.endswith(handoff.SPARE_SUFFIX) for path in spares)
    assert sum(path.stat().st_size for path in spares) <= handoff.SPARE_BUDGET_BYTES


def test_buffers_start_aligned_for_arrow(tmp_path: Path) -> None:
    rows_file = write_rows_file(str(tmp_path), big_chunks())
    read_rows_file(rows_file)

    starts = [span[0] for _, columns in rows_file.chunks for column in columns
              for span in column[1:] if span is not None]
    assert starts and all(start % handoff.ALIGNMENT == 0 for start in starts)


def test_small_results_and_unwritable_folders_go_through_the_pipe(tmp_path: Path) -> None:
    body = firehose_body([json.dumps(record).encode() for record in generate_cloudtrail(
        1, BIG_REQUEST_START_MS, BIG_REQUEST_START_MS + 60_000, 3)], "small-1",
        BIG_REQUEST_START_MS)
    _, _, small = decode_firehose_rows(json.dumps(body).encode(), {}, Limits())
    assert write_rows_file(str(tmp_path), small) is None  # not worth a file

    missing = tmp_path / "gone"
    assert write_rows_file(str(missing), big_chunks()) is None
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_rows_file_that_is_gone_or_cut_short_is_an_os_error(tmp_path: Path) -> None:
    gone = write_rows_file(str(tmp_path), big_chunks(1))
    os.unlink(gone.path)
    with pytest.raises(OSError):
        read_rows_file(gone)

    cut = write_rows_file(str(tmp_path), big_chunks(2))
    os.truncate(cut.path, cut.size // 2)
    with pytest.raises(OSError, match="does not hold"):
        read_rows_file(cut)
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_an_earlier_run_are_cleared(tmp_path: Path) -> None:
    folder = tmp_path / "handoff"
    folder.mkdir()
    (folder / "4242-0.rows").write_bytes(b"from a server that was killed")
    (folder / f"4242-3{handoff.SPARE_SUFFIX}").write_bytes(b"a spare it kept")
    (folder / "notes.txt").write_text("not ours")

    clear_handoff_folder(folder)

    assert sorted(path.name for path in folder.iterdir()) == ["notes.txt"]


def test_a_pool_with_a_handoff_folder_gives_the_in_process_rows(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "handoff"
    pool = DecodePool(2, folder)
    try:
        body = big_cloudtrail_request(1)[1]
        in_worker = asyncio.run(pool.decode_firehose(body, GZIP, Limits()))
        in_process = decode_in_process(body, GZIP, Limits())
        while_held = names(folder)

        shutil.rmtree(folder)  # removed behind the server's back: created again
        after_removal = asyncio.run(pool.decode_firehose(body, GZIP, Limits()))
        recreated = folder.is_dir()

        shutil.rmtree(folder)
        folder.write_text("a file where the folder was")  # the pipe takes over
        without_folder = asyncio.run(pool.decode_firehose(body, GZIP, Limits()))
        asyncio.run(pool.decode_firehose(body, GZIP, Limits()))  # said once, not again
        folder.unlink()
        folder.mkdir()
        last = asyncio.run(pool.decode_firehose(body, GZIP, Limits()))
    finally:
        pool.close()

    assert in_worker.table.num_rows == BIG_REQUEST_RECORDS
    assert in_worker.table.equals(in_process.table)
    assert len(while_held) == 1 and while_held[0].endswith(".rows")  # the table maps it
    assert recreated and after_removal.table.equals(in_process.table)
    assert without_folder.table.equals(in_process.table)
    assert last.table.equals(in_process.table)
    assert names(folder) == []  # closing the pool clears the folder, held files included
    said = [record.getMessage() for record in caplog.records]
    assert sum("created it again" in message for message in said) == 1
    assert sum("cannot use the decode hand-over folder" in message for message in said) == 1


def test_results_of_a_broken_pools_workers_are_deleted(tmp_path: Path) -> None:
    import signal
    import time

    folder = tmp_path / "handoff"
    pool = DecodePool(2, folder)
    try:
        asyncio.run(pool.decode_firehose(big_cloudtrail_request(1)[1], GZIP, Limits()))
        workers = list(pool._executor._processes)
        for pid in workers:  # results a killed worker left half-written
            (folder / f"{pid}-7.rows").write_bytes(b"cut short")
        os.kill(workers[0], signal.SIGKILL)

        after = asyncio.run(pool.decode_firehose(big_cloudtrail_request(2)[1], GZIP, Limits()))

        def left_by_the_killed_pool() -> list[str]:
            return [name for name in names(folder) if name.split("-")[0] in map(str, workers)
                    and name.endswith(".rows")]

        for _ in range(500):  # the broken pool's other worker exits in its own time
            if not left_by_the_killed_pool():
                break
            time.sleep(0.02)
        left = left_by_the_killed_pool()
    finally:
        pool.close()

    assert after.table.num_rows == BIG_REQUEST_RECORDS
    assert left == []


def test_rows_lost_on_the_way_are_decoded_again(tmp_path: Path, monkeypatch, caplog) -> None:
    from trailguard.ingest import decode_pool

    def lost(rows_file: RowsFile) -> list:
        os.unlink(rows_file.path)
        return read_rows_file(rows_file)

    monkeypatch.setattr(decode_pool, "read_rows_file", lost)
    pool = DecodePool(1, tmp_path / "handoff")
    try:
        body = big_cloudtrail_request(3)[1]
        decoded = asyncio.run(pool.decode_firehose(body, GZIP, Limits()))
    finally:
        pool.close()

    assert decoded.table.equals(decode_in_process(body, GZIP, Limits()).table)
    assert any(record.getMessage().startswith("decoded rows lost") for record in caplog.records)


def test_a_planted_link_or_pipe_is_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("not trailguard's")
    folder = tmp_path / "handoff"
    folder.mkdir()
    link, pipe = folder / f"1-0{handoff.SPARE_SUFFIX}", folder / f"1-1{handoff.SPARE_SUFFIX}"
    link.symlink_to(victim)
    os.mkfifo(pipe)
    hard_link = folder / f"1-2{handoff.SPARE_SUFFIX}"
    os.link(victim, hard_link)
    chunks = big_chunks()

    # The hard link is claimed like a spare but refused when opened: the pipe takes over.
    assert write_rows_file(str(folder), chunks) is None
    rows_file = write_rows_file(str(folder), chunks)  # the others are not taken as spares
    with pytest.raises(OSError, match="not a regular file|Too many levels|ELOOP"):
        handoff._write_all(str(link), [b"rows"], 4, reused=True)
    with pytest.raises(OSError):  # refused at once, not waiting for a reader
        handoff._write_all(str(pipe), [b"rows"], 4, reused=True)
    with pytest.raises(OSError):
        read_rows_file(RowsFile(str(link), len("not trailguard's"), ()))

    assert victim.read_text() == "not trailguard's"
    assert table_from_chunks(read_rows_file(rows_file)).equals(table_from_chunks(chunks))


def test_a_link_in_place_of_the_folder_is_not_followed(tmp_path: Path, caplog) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / f"keep{handoff.SPARE_SUFFIX}").write_bytes(b"x" * 4096)
    (elsewhere / "report.rows").write_text("not trailguard's")
    folder = tmp_path / "handoff"
    folder.symlink_to(elsewhere)

    pool = DecodePool(1, folder)
    try:
        body = big_cloudtrail_request(1)[1]
        decoded = [asyncio.run(pool.decode_firehose(body, GZIP, Limits())) for _ in range(2)]
    finally:
        pool.close()

    assert all(one.table.equals(decode_in_process(body, GZIP, Limits()).table)
               for one in decoded)
    assert names(elsewhere) == ["keep.spare", "report.rows"]  # untouched
    assert (elsewhere / "report.rows").read_text() == "not trailguard's"
    said = [record.getMessage() for record in caplog.records]
    assert sum("cannot use the decode hand-over folder" in message for message in said) == 1
