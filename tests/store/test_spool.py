"""The spool: acknowledged deliveries on disk until committed, written again after a crash."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from trailguard.errors import StoreError
from trailguard.events import LOG, Event
from trailguard.store import Delivery, DuckDBStore, WriteResult
from trailguard.store.spool import QUARANTINE_DIR, Spool, SpoolRecord, read_segment
from trailguard.store.writer import GroupCommitWriter

T0 = 1_700_000_000_000


def events(prefix: str, count: int) -> list[Event]:
    # No content keys: only the request key can tell a replayed delivery apart.
    return [Event(LOG, T0 + n, {"message": f"{prefix}-{n}"}, None) for n in range(count)]


def record(name: str, count: int) -> SpoolRecord:
    return SpoolRecord("test", {"name": name, "count": count}, name.encode())


def replay(spooled: SpoolRecord) -> Delivery:
    """Rebuilds the delivery from its record, as the receivers' replay decodes a body."""
    name, count = spooled.meta["name"], spooled.meta["count"]
    return Delivery(events(name, count), f"req-{name}", 1)


def delivery(name: str, count: int) -> tuple[Delivery, SpoolRecord]:
    return replay(record(name, count)), record(name, count)


def messages(store: DuckDBStore) -> list[str]:
    return [row[0] for row in store.read("SELECT a_message FROM events ORDER BY 1", {}).rows]


@pytest.fixture
def store(tmp_path: Path):
    opened = DuckDBStore(tmp_path / "data")
    yield opened
    opened.close()


class FlakyStore:
    """A real store that refuses writes while `refusing` is set, or any group holding
    the delivery `poison`."""

    def __init__(self, store: DuckDBStore, poison: str | None = None) -> None:
        self.store = store
        self.poison = poison
        self.refusing = threading.Event()
        self.attempts = 0

    def write_deliveries(self, deliveries: list[Delivery]) -> list[WriteResult]:
        self.attempts += 1
        if self.refusing.is_set():
            raise StoreError("disk full (simulated)")
        if any(d.request_id == self.poison for d in deliveries):
            raise StoreError("a value no column can hold (simulated)")
        return self.store.write_deliveries(deliveries)


def test_records_survive_a_round_trip_and_a_torn_tail_is_skipped(tmp_path: Path):
    spool = Spool(tmp_path)
    spool.append([record("a", 1), SpoolRecord("logapi", {"gzipped": True}, b"\x00\xff" * 50)])
    spool.append([record("b", 2)])
    spool.close()
    segment, = spool.leftover_segments()
    with segment.open("ab") as torn:  # a crash in the middle of the next append
        torn.write(b"TGS2\x10\x00")

    contents = read_segment(segment)
    kept = contents.records

    assert [(r.kind, r.meta, r.payload) for r in kept] == [
        ("test", {"name": "a", "count": 1}, b"a"),
        ("logapi", {"gzipped": True}, b"\x00\xff" * 50),
        ("test", {"name": "b", "count": 2}, b"b")]
    assert (contents.torn_tail, contents.damaged) == (True, False)


def test_a_damaged_frame_costs_only_itself(tmp_path: Path):
    spool = Spool(tmp_path)
    spool.append([record("a", 1), record("b", 1), record("c", 1)])
    spool.close()
    segment, = spool.leftover_segments()
    data = bytearray(segment.read_bytes())
    middle = data.index(b'"name":"b"')
    data[middle + 2] ^= 0xFF  # frame b's metadata: its CRC no longer matches
    segment.write_bytes(bytes(data))

    contents = read_segment(segment)

    assert [r.meta["name"] for r in contents.records] == ["a", "c"]
    assert (contents.damaged, contents.torn_tail) == (True, False)


@pytest.mark.parametrize("garbage", [b"not a spool segment at all", b"TGS2" + b"\xff" * 30,
                                     b"\x00" * 64])
def test_garbage_is_damage_not_a_torn_tail(tmp_path: Path, garbage: bytes):
    segment = tmp_path / "000000000001.spool"
    segment.write_bytes(garbage)

    contents = read_segment(segment)

    assert contents.records == []
    assert contents.damaged and not contents.torn_tail


def test_a_frame_with_a_valid_checksum_but_no_kind_is_skipped(tmp_path: Path):
    import struct
    import zlib

    meta, payload = b'{"no":"kind"}', b"x"
    fields = struct.pack("<4sIII", b"TGS2", len(meta), len(payload), zlib.crc32(meta + payload))
    bad = fields + struct.pack("<I", zlib.crc32(fields))
    spool = Spool(tmp_path)
    spool.append([record("a", 1)])
    spool.close()
    segment, = spool.leftover_segments()
    segment.write_bytes(segment.read_bytes() + bad + meta + payload)

    contents = read_segment(segment)

    assert [r.meta["name"] for r in contents.records] == ["a"]
    assert contents.damaged


def test_damaged_segments_are_written_then_set_aside_at_start(store):
    spool = Spool(store.spool_dir)
    spool.append([record("a", 2), record("b", 2), record("c", 2)])
    spool.close()
    segment, = spool.leftover_segments()
    data = bytearray(segment.read_bytes())
    data[data.index(b'"name":"b"') + 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    (store.spool_dir / "000000000099.spool").mkdir()  # not a segment: ignored

    GroupCommitWriter(store, spool=Spool(store.spool_dir), replay=replay).close()

    assert messages(store) == ["a-0", "a-1", "c-0", "c-1"]
    aside, = (store.spool_dir / QUARANTINE_DIR).iterdir()
    assert aside.read_bytes() == bytes(data)  # kept whole, for a look by hand
    assert Spool(store.spool_dir).leftover_segments() == []


class FailingWrites:
    """A segment file whose next write stops halfway with ENOSPC."""

    def __init__(self, file) -> None:
        self.file = file
        self.fail_next = True

    def write(self, data: bytes) -> int:
        if self.fail_next:
            self.fail_next = False
            self.file.write(data[:len(data) // 2])
            self.file.flush()
            raise OSError(28, "No space left on device")
        return self.file.write(data)

    def __getattr__(self, name: str):
        return getattr(self.file, name)


def test_a_failed_append_leaves_no_torn_bytes_before_later_records(tmp_path: Path):
    spool = Spool(tmp_path)
    spool.append([record("a", 1)])
    spool._current = FailingWrites(spool._current)

    with pytest.raises(OSError, match="No space"):
        spool.append([record("refused", 1)])
    spool.append([record("c", 1)])
    spool.close()

    segment, = spool.leftover_segments()
    contents = read_segment(segment)
    assert [r.meta["name"] for r in contents.records] == ["a", "c"]
    assert not contents.damaged


def test_set_aside_requests_never_overwrite_each_other(tmp_path: Path):
    first = Spool(tmp_path)
    kept = [first.quarantine(record("one", 1), "test"), first.quarantine(record("two", 1), "t")]
    second = Spool(tmp_path)  # a later start
    kept.append(second.quarantine(record("three", 1), "test"))

    names = [read_segment(path).records[0].meta["name"] for path in kept]
    assert names == ["one", "two", "three"]
    assert len(set(kept)) == 3


def test_a_segment_that_cannot_be_deleted_does_not_stop_ingest(store, monkeypatch):
    writer = GroupCommitWriter(store, spool=Spool(store.spool_dir), replay=replay,
                               commit_rows=1)
    spool = writer._spool
    real_release = spool.release
    failures = []

    def failing_release(segments):
        if not failures:
            failures.append(segments)
            raise PermissionError(1, "Operation not permitted")
        real_release(segments)

    monkeypatch.setattr(spool, "release", failing_release)
    writer.submit(*delivery("first", 1)).result(timeout=10)
    writer.flush()
    writer.submit(*delivery("second", 1)).result(timeout=10)
    writer.close()

    assert failures and messages(store) == ["first-0", "second-0"]
    # The segment left behind is a replay at the next start: stored once.
    GroupCommitWriter(store, spool=Spool(store.spool_dir), replay=replay).close()
    assert messages(store) == ["first-0", "second-0"]


def test_a_new_spool_numbers_segments_after_the_leftover_ones(tmp_path: Path):
    first = Spool(tmp_path)
    first.append([record("a", 1)])
    first.close()

    second = Spool(tmp_path)
    second.append([record("b", 1)])
    second.release(second.rotate())

    assert [path.name for path in second.leftover_segments()] == ["000000000001.spool"]


def test_a_spooled_delivery_is_acknowledged_before_its_commit(store, tmp_path: Path):
    gate = threading.Event()

    class Gated:
        def write_deliveries(self, deliveries):
            gate.wait()
            return store.write_deliveries(deliveries)

    writer = GroupCommitWriter(Gated(), spool=Spool(tmp_path / "spool"), replay=replay)  # type: ignore[arg-type]
    acked = writer.submit(*delivery("a", 3)).result(timeout=10)

    assert acked == WriteResult(3, 0, pending=True)
    assert len(Spool(tmp_path / "spool").leftover_segments()) == 1  # on disk before commit
    gate.set()
    writer.close()
    assert messages(store) == ["a-0", "a-1", "a-2"]
    assert Spool(tmp_path / "spool").leftover_segments() == []


def test_acknowledged_deliveries_are_committed_together_and_seen_by_the_next_read(store):
    writer = GroupCommitWriter(store, spool=Spool(store.spool_dir), replay=replay,
                               commit_rows=1_000, commit_delay_s=60)
    acks = [writer.submit(*delivery(f"r{n}", 10)).result(timeout=10) for n in range(5)]

    assert writer.commits == 0  # 50 rows wait for 1,000 or for a reader
    assert len(messages(store)) == 50  # the read flushed them
    assert writer.commits == 1
    assert all(ack.pending for ack in acks)
    writer.close()


def test_a_batch_is_committed_once_it_reaches_commit_rows(store):
    writer = GroupCommitWriter(store, spool=Spool(store.spool_dir), replay=replay,
                               commit_rows=25, commit_delay_s=60)
    for n in range(6):
        writer.submit(*delivery(f"r{n}", 10)).result(timeout=10)
    writer.close()

    # 10 + 10 + 10 reach 25; the last 30 are committed by close.
    assert writer.commits == 2
    assert len(messages(store)) == 60


def test_a_page_without_a_record_commits_the_batch_and_waits_for_it(store):
    writer = GroupCommitWriter(store, spool=Spool(store.spool_dir), replay=replay,
                               commit_rows=1_000, commit_delay_s=60)
    writer.submit(*delivery("spooled", 2)).result(timeout=10)

    result = writer.write(Delivery(events("page", 3), "page-1", 1))

    assert result == WriteResult(3, 0)
    assert writer.commits == 1
    writer.close()


def test_a_crash_before_the_commit_loses_nothing_and_stores_nothing_twice(store, tmp_path):
    # What a killed server leaves: two acknowledged requests in the spool, the first of
    # them committed just before the kill (its segment not yet deleted).
    spool = Spool(store.spool_dir)
    spool.append([record("committed", 4), record("waiting", 3)])
    spool.close()
    store.write_deliveries([replay(record("committed", 4))])

    writer = GroupCommitWriter(store, spool=Spool(store.spool_dir), replay=replay)
    writer.close()

    assert messages(store) == [f"committed-{n}" for n in range(4)] + [
        f"waiting-{n}" for n in range(3)]
    assert Spool(store.spool_dir).leftover_segments() == []


def test_a_record_that_cannot_be_decoded_again_is_set_aside_not_deleted(store):
    spool = Spool(store.spool_dir)
    spool.append([record("good", 2), SpoolRecord("unknown", {}, b"?")])
    spool.close()

    def strict_replay(spooled: SpoolRecord) -> Delivery:
        if spooled.kind != "test":
            raise ValueError("unknown kind")
        return replay(spooled)

    GroupCommitWriter(store, spool=Spool(store.spool_dir), replay=strict_replay).close()

    assert messages(store) == ["good-0", "good-1"]
    aside, = (store.spool_dir / QUARANTINE_DIR).iterdir()
    assert [r.kind for r in read_segment(aside).records] == ["unknown"]


def test_a_refusing_store_keeps_the_batch_and_commits_it_later(store):
    flaky = FlakyStore(store)
    writer = GroupCommitWriter(flaky, spool=Spool(store.spool_dir), replay=replay,  # type: ignore[arg-type]
                               commit_rows=1, commit_delay_s=60)
    flaky.refusing.set()
    acked = writer.submit(*delivery("a", 2)).result(timeout=10)
    page = writer.submit(Delivery(events("page", 1), "page-1", 1))

    with pytest.raises(StoreError, match="refused"):
        page.result(timeout=10)  # a sender that waits for the commit hears why
    assert acked.pending and messages(store) == []
    flaky.refusing.clear()
    writer.flush()  # waits out the pause, then commits

    assert messages(store) == ["a-0", "a-1"]
    assert flaky.attempts >= 2
    writer.close()


def test_a_delivery_the_store_refuses_alone_is_set_aside_and_the_rest_committed(store):
    flaky = FlakyStore(store, poison="req-bad")
    writer = GroupCommitWriter(flaky, spool=Spool(store.spool_dir), replay=replay,  # type: ignore[arg-type]
                               commit_rows=1_000, commit_delay_s=60)
    for name in ("good", "bad", "fine"):
        writer.submit(*delivery(name, 2)).result(timeout=10)
    writer.close()

    assert messages(store) == ["fine-0", "fine-1", "good-0", "good-1"]
    aside, = (store.spool_dir / QUARANTINE_DIR).iterdir()
    assert [r.meta["name"] for r in read_segment(aside).records] == ["bad"]
    assert Spool(store.spool_dir).leftover_segments() == []


def test_deliveries_are_acknowledged_while_a_commit_is_in_progress(store):
    entered, gate = threading.Event(), threading.Event()

    class Slow:
        def write_deliveries(self, deliveries):
            entered.set()
            gate.wait()
            return store.write_deliveries(deliveries)

    writer = GroupCommitWriter(Slow(), spool=Spool(store.spool_dir), replay=replay,  # type: ignore[arg-type]
                               commit_rows=1)
    writer.submit(*delivery("first", 2)).result(timeout=10)
    assert entered.wait(timeout=10)  # the first batch's commit is under way

    later = [writer.submit(*delivery(f"r{n}", 2)).result(timeout=10) for n in range(3)]

    assert all(ack.pending for ack in later)
    gate.set()
    writer.close()
    assert len(messages(store)) == 8
    assert Spool(store.spool_dir).leftover_segments() == []


def test_a_damaged_length_in_the_last_frame_is_damage_not_a_torn_tail(tmp_path: Path):
    spool = Spool(tmp_path)
    spool.append([record("a", 1), record("b", 1)])
    spool.close()
    segment, = spool.leftover_segments()
    data = bytearray(segment.read_bytes())
    last = data.rindex(b"TGS2")
    data[last + 5] ^= 0x40  # frame b's metadata length: it now runs past the end
    segment.write_bytes(bytes(data))

    contents = read_segment(segment)

    assert [r.meta["name"] for r in contents.records] == ["a"]
    assert (contents.damaged, contents.torn_tail) == (True, False)  # kept, not deleted


def test_when_cutting_back_fails_the_next_records_go_to_a_new_segment(tmp_path, monkeypatch):
    import os as real_os

    spool = Spool(tmp_path)
    spool.append([record("a", 1)])
    spool._current = FailingWrites(spool._current)

    def no_truncate(descriptor, length):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(real_os, "ftruncate", no_truncate)
    with pytest.raises(OSError):
        spool.append([record("refused", 1)])
    monkeypatch.undo()
    spool.append([record("c", 1)])
    segments = spool.rotate()

    assert len(segments) == 2  # the damaged one, then the new one; both deleted together
    first, second = (read_segment(path) for path in segments)
    assert [r.meta["name"] for r in first.records] == ["a"] and first.torn_tail
    assert [r.meta["name"] for r in second.records] == ["c"] and not second.damaged


def test_a_lone_spooled_request_the_store_refuses_is_set_aside_at_start(store):
    spool = Spool(store.spool_dir)
    spool.append([record("bad", 1)])
    spool.close()
    spool.rotate()
    flaky = FlakyStore(store, poison="req-bad")

    GroupCommitWriter(flaky, spool=Spool(store.spool_dir), replay=replay).close()  # type: ignore[arg-type]

    aside, = (store.spool_dir / QUARANTINE_DIR).iterdir()
    assert [r.meta["name"] for r in read_segment(aside).records] == ["bad"]
    assert Spool(store.spool_dir).leftover_segments() == []


def test_a_store_refusing_every_spooled_request_stops_the_start(store):
    spool = Spool(store.spool_dir)
    spool.append([record("a", 1), record("b", 1)])
    spool.close()
    flaky = FlakyStore(store)
    flaky.refusing.set()

    with pytest.raises(StoreError, match="disk full .*stay there for the next start"):
        GroupCommitWriter(flaky, spool=Spool(store.spool_dir), replay=replay)  # type: ignore[arg-type]

    assert len(Spool(store.spool_dir).leftover_segments()) == 1
    assert not (store.spool_dir / QUARANTINE_DIR).exists()


def big_replay(spooled: SpoolRecord) -> Delivery:
    name, count = spooled.meta["name"], spooled.meta["count"]
    return Delivery([Event(LOG, T0 + n, {"message": f"{name}-{n}-" + "z" * 300}, None)
                     for n in range(count)], f"req-{name}", 1)


def test_a_full_disk_keeps_acknowledged_requests_waiting_not_set_aside(store, caplog):
    # A real write failure: the process may not grow any file past a size limit (what a
    # full disk looks like to DuckDB); Python ignores the SIGXFSZ that comes with it.
    import resource

    writer = GroupCommitWriter(store, spool=Spool(store.spool_dir), replay=big_replay,
                               commit_rows=10**9, commit_delay_s=0.05)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        # Room for the small spool records, none for the rows.
        resource.setrlimit(resource.RLIMIT_FSIZE, (store.path.stat().st_size + 64 * 1024, hard))
        for name in [f"full-{n}" for n in range(4)]:
            spooled = SpoolRecord("test", {"name": name, "count": 3_000}, name.encode())
            assert writer.submit(big_replay(spooled), spooled).result(timeout=30).pending
        for _ in range(3_000):
            if sum("the store cannot write" in r.getMessage() for r in caplog.records) >= 2:
                break
            threading.Event().wait(0.01)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    writer.flush()
    writer.close()

    refusals = [r for r in caplog.records if "the store cannot write" in r.getMessage()]
    assert len(refusals) >= 2 and "File too large" in refusals[0].fields["reason"]
    assert not (store.spool_dir / QUARANTINE_DIR).exists() or \
        list((store.spool_dir / QUARANTINE_DIR).iterdir()) == []
    counted = store.read("SELECT count(*), count(DISTINCT a_message) FROM events", {}).rows
    assert counted == [(4 * 3_000, 4 * 3_000)]


def test_a_refusal_for_want_of_room_commits_the_batch_at_once(store):
    from trailguard.errors import StoreOverloadedError

    # Bounds below a batch: the batch would otherwise wait for commit_delay_s (an hour).
    writer = GroupCommitWriter(store, max_queued_events=1_000, spool=Spool(store.spool_dir),
                               replay=replay, commit_rows=16_384, commit_delay_s=3_600)
    first, first_record = delivery("room-1", 800)
    assert writer.submit(first, first_record).result(timeout=30).pending
    second, second_record = delivery("room-2", 800)
    with pytest.raises(StoreOverloadedError):
        writer.submit(second, second_record)

    for _ in range(1_000):  # room comes with the commit the refusal asked for
        try:
            accepted = writer.submit(second, second_record)
            break
        except StoreOverloadedError:
            threading.Event().wait(0.01)
    else:
        raise AssertionError("the refused delivery never found room")
    assert accepted.result(timeout=30).pending
    writer.close()
    assert len(messages(store)) == 1_600
