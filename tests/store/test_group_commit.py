"""Group commit: many deliveries, few transactions, every delivery stored exactly once."""

from __future__ import annotations

import threading
import time
import weakref
from pathlib import Path

import pytest

from trailguard.errors import StoreError, StoreOverloadedError
from trailguard.events import LOG, Event
from trailguard.store import Delivery, DuckDBStore, WriteResult
from trailguard.store.arrow_rows import events_to_table
from trailguard.store.writer import GroupCommitWriter


def events(prefix: str, count: int, keyed: bool = True) -> list[Event]:
    return [Event(LOG, 1_700_000_000_000 + n, {"message": f"{prefix}-{n}"},
                  f"k:{prefix}-{n}" if keyed else None) for n in range(count)]


def stored_messages(store: DuckDBStore) -> list[str]:
    rows = store.read("SELECT a_message FROM events ORDER BY a_message", {}).rows
    return [row[0] for row in rows]


class GatedStore:
    """A real store whose first write waits until the test opens the gate."""

    def __init__(self, store: DuckDBStore) -> None:
        self.store = store
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.groups: list[int] = []

    def write_deliveries(self, deliveries: list[Delivery]) -> list[WriteResult]:
        self.entered.set()
        self.gate.wait()
        self.groups.append(len(deliveries))
        return self.store.write_deliveries(deliveries)


@pytest.fixture
def store(tmp_path: Path):
    opened = DuckDBStore(tmp_path)
    yield opened
    opened.close()


def test_a_delivery_key_twice_in_one_group_is_stored_once(store):
    first = Delivery(events("a", 3, keyed=False), "req-1|abc", 1)
    again = Delivery(events("a", 3, keyed=False), "req-1|abc", 2)
    other = Delivery(events("b", 2, keyed=False), "req-2|def", 3)

    results = store.write_deliveries([first, again, other])

    assert results == [WriteResult(3, 0), WriteResult(0, 3, replayed=True), WriteResult(2, 0)]
    assert stored_messages(store) == ["a-0", "a-1", "a-2", "b-0", "b-1"]
    assert store.write_deliveries([again]) == [WriteResult(0, 3, replayed=True)]


def test_a_content_key_in_two_deliveries_of_one_group_is_stored_once(store):
    results = store.write_deliveries([Delivery(events("a", 2), "r1"),
                                      Delivery(events("a", 3), "r2")])

    assert results == [WriteResult(2, 0), WriteResult(1, 2)]
    assert stored_messages(store) == ["a-0", "a-1", "a-2"]


def test_concurrent_deliveries_share_one_transaction(store):
    gated = GatedStore(store)
    writer = GroupCommitWriter(gated)
    head = writer.submit(Delivery(events("head", 1), "head"))
    gated.entered.wait()
    rest = [writer.submit(Delivery(events(f"d{n}", 2), f"r{n}")) for n in range(10)]

    gated.gate.set()

    assert head.result() == WriteResult(1, 0)
    assert [future.result() for future in rest] == [WriteResult(2, 0)] * 10
    writer.close()
    assert gated.groups == [1, 10]
    assert len(stored_messages(store)) == 21


def test_a_full_queue_refuses_with_overloaded(store):
    gated = GatedStore(store)
    writer = GroupCommitWriter(gated, max_queued_events=100)
    head = writer.submit(Delivery(events("head", 1), "head"))
    gated.entered.wait()
    queued = [writer.submit(Delivery(events(f"d{n}", 40), f"r{n}")) for n in range(2)]

    with pytest.raises(StoreOverloadedError, match="ingest queue is full .*bound 100"):
        writer.submit(Delivery(events("late", 40), "late"))

    gated.gate.set()
    assert [future.result() for future in [head, *queued]] == [
        WriteResult(1, 0), WriteResult(40, 0), WriteResult(40, 0)]
    assert writer.write(Delivery(events("late", 40), "late")) == WriteResult(40, 0)
    writer.close()
    assert len(stored_messages(store)) == 121


def test_a_queue_full_of_bytes_refuses_with_overloaded(store):
    gated = GatedStore(store)
    big = events_to_table([Event(LOG, 1_700_000_000_000 + n, {"message": "x" * 10_000},
                                 f"k:big-{n}") for n in range(10)])
    writer = GroupCommitWriter(gated, max_queued_events=1_000, max_queued_bytes=150_000)
    head = writer.submit(Delivery(events("head", 1), "head"))
    gated.entered.wait()
    queued = writer.submit(Delivery([], "big-1", table=big))  # ~100 KB of rows

    with pytest.raises(StoreOverloadedError, match=r"MiB waiting, bound 0 MiB"):
        writer.submit(Delivery([], "big-2", table=big))

    gated.gate.set()
    assert [head.result(), queued.result()] == [WriteResult(1, 0), WriteResult(10, 0)]
    writer.close()


def test_groups_are_bounded_in_events(store):
    gated = GatedStore(store)
    writer = GroupCommitWriter(gated, max_group_events=25)
    head = writer.submit(Delivery(events("head", 1), "head"))
    gated.entered.wait()
    rest = [writer.submit(Delivery(events(f"d{n}", 10), f"r{n}")) for n in range(5)]

    gated.gate.set()

    assert [future.result() for future in [head, *rest]] == [WriteResult(1, 0)] + [
        WriteResult(10, 0)] * 5
    writer.close()
    assert gated.groups == [1, 2, 2, 1]


def test_one_bad_delivery_fails_alone(store):
    good = Delivery(events("good", 2), "good")
    bad = Delivery([Event(LOG, 2**70, {"message": "bad"}, None)], "bad")
    gated = GatedStore(store)
    writer = GroupCommitWriter(gated)
    head = writer.submit(Delivery(events("head", 1), "head"))
    gated.entered.wait()
    futures = [writer.submit(good), writer.submit(bad)]

    gated.gate.set()

    assert head.result() == WriteResult(1, 0)
    assert futures[0].result() == WriteResult(2, 0)
    with pytest.raises(StoreError, match="cannot write to .*too large"):
        futures[1].result()
    writer.close()
    assert stored_messages(store) == ["good-0", "good-1", "head-0"]


def test_a_cancelled_waiter_neither_stores_nor_stops_the_writer(store):
    gated = GatedStore(store)
    writer = GroupCommitWriter(gated)
    head = writer.submit(Delivery(events("head", 1), "head"))
    gated.entered.wait()
    given_up = writer.submit(Delivery(events("gone", 2), "gone"))
    kept = writer.submit(Delivery(events("kept", 2), "kept"))

    assert given_up.cancel() is True
    gated.gate.set()

    assert (head.result(), kept.result()) == (WriteResult(1, 0), WriteResult(2, 0))
    assert writer.write(Delivery(events("after", 1), "after")) == WriteResult(1, 0)
    writer.close()
    assert stored_messages(store) == ["after-0", "head-0", "kept-0", "kept-1"]


def released(reference: weakref.ref, seconds: float = 10) -> bool:
    """Whether `reference`'s object is freed within `seconds` (the writer's threads let
    go of it in their own time, just after the commit)."""
    deadline = time.monotonic() + seconds
    while reference() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    return reference() is None


def test_committed_rows_are_let_go_while_the_writer_waits(store):
    # Rows a decode worker handed over keep its file (and their memory) while held; the
    # writer held the last batch until the next one came.
    writer = GroupCommitWriter(store)
    rows = events_to_table(events("held", 3))
    reference = weakref.ref(rows)

    assert writer.write(Delivery([], "held", table=rows)) == WriteResult(3, 0)
    del rows

    assert released(reference)
    writer.close()
