"""`WriterSink`: pollers wait out a full write queue, and give way to a stop at once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
from sources.support import count

from trailguard.events import Event
from trailguard.sources.sink import PollStopped, WriterSink
from trailguard.store import DuckDBStore
from trailguard.store.base import Delivery, WriteResult
from trailguard.store.writer import GroupCommitWriter


class GatedStore:
    """The real store, but each commit waits until the test opens the gate."""

    dialect = "duckdb"

    def __init__(self, inner: DuckDBStore) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.entered = threading.Event()

    def write_deliveries(self, deliveries: list[Delivery]) -> list[WriteResult]:
        self.entered.set()
        self.gate.wait(30)
        return self.inner.write_deliveries(deliveries)


def events(prefix: str, how_many: int) -> list[Event]:
    return [Event("Log", 1_700_000_000_000, {"message": f"{prefix}-{n}"}, f"{prefix}-{n}")
            for n in range(how_many)]


@pytest.fixture
def full_queue(store: DuckDBStore) -> Iterator[tuple[GatedStore, GroupCommitWriter]]:
    """A writer (bound: 10 queued events) stuck on one commit with 10 more events queued."""
    gated = GatedStore(store)
    writer = GroupCommitWriter(gated, max_queued_events=10)  # type: ignore[arg-type]
    writer.submit(Delivery(events("committing", 10)))
    assert gated.entered.wait(10)
    writer.submit(Delivery(events("queued", 10)))
    yield gated, writer
    gated.gate.set()
    writer.close()


def test_a_full_queue_makes_the_poller_wait_not_fail(
        full_queue: tuple[GatedStore, GroupCommitWriter], store: DuckDBStore,
        caplog: pytest.LogCaptureFixture) -> None:
    gated, writer = full_queue
    sink = WriterSink(writer, threading.Event(), busy_wait_s=0.05, max_busy_wait_s=0.1)
    threading.Timer(0.4, gated.gate.set).start()
    trailguard_log = logging.getLogger("trailguard")
    trailguard_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="trailguard"):
            result = sink.write(events("polled", 5))
    finally:
        trailguard_log.removeHandler(caplog.handler)

    # (a record can reach caplog twice: through its handler and through propagation)
    waits = {id(r) for r in caplog.records if r.getMessage() == "write queue full, poller waits"}
    assert result == WriteResult(5, 0)
    # 0.05 s, then 0.1 s each: at least 4 before the gate opens at 0.4 s, then more until
    # the commits ahead of it have drained the queue
    assert 4 <= len(waits) < 50
    assert count(store) == 25


def test_stop_ends_the_wait_for_a_full_queue_at_once(
        full_queue: tuple[GatedStore, GroupCommitWriter], store: DuckDBStore) -> None:
    _, writer = full_queue
    stopping = threading.Event()
    sink = WriterSink(writer, stopping, busy_wait_s=5.0)
    threading.Timer(0.2, stopping.set).start()

    started = time.monotonic()
    with pytest.raises(PollStopped):
        sink.write(events("polled", 5))
    assert time.monotonic() - started < 1.0


def test_an_empty_page_commits_nothing(store: DuckDBStore) -> None:
    writer = GroupCommitWriter(store)
    try:
        assert WriterSink(writer, threading.Event()).write([]) == WriteResult(0, 0)
        assert writer.commits == 0
    finally:
        writer.close()
