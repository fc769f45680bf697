"""A full ingest queue answers 503 with Firehose's error body; nothing is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ingest_hostile import FIREHOSE_KEY, envelope, firehose_headers
from starlette.testclient import TestClient

from trailguard.config import Config
from trailguard.store import Delivery, DuckDBStore, WriteResult
from trailguard.web.app import create_app


class GatedStore:
    """The real store; the first write waits until the test opens the gate."""

    def __init__(self, store: DuckDBStore) -> None:
        self.store = store
        self.entered = threading.Event()
        self.gate = threading.Event()

    def write_deliveries(self, deliveries: list[Delivery]) -> list[WriteResult]:
        self.entered.set()
        self.gate.wait()
        return self.store.write_deliveries(deliveries)

    def __getattr__(self, name: str):
        return getattr(self.store, name)


def test_full_queue_gets_503_then_the_retry_is_stored(tmp_path: Path):
    store = DuckDBStore(tmp_path)
    gated = GatedStore(store)
    config = Config(data_dir=tmp_path, firehose_access_key=FIREHOSE_KEY, api_key="a" * 16,
                    ingest_queue_events=1)
    client = TestClient(create_app(config, gated))
    answers: dict[str, int] = {}

    def deliver(request_id: str) -> None:
        response = client.post("/firehose/v1", content=envelope(b"{}", request_id=request_id),
                               headers=firehose_headers(request_id))
        answers[request_id] = response.status_code

    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    gated.entered.wait()
    second = threading.Thread(target=deliver, args=("second",))
    second.start()
    writer = client.app.state.trailguard.writer
    for _ in range(10_000):  # until "second" waits in the queue
        if writer._queue:
            break
        time.sleep(0.001)

    refused = client.post("/firehose/v1", content=envelope(b"{}", request_id="third"),
                          headers=firehose_headers("third"))

    assert refused.status_code == 503
    assert refused.json()["requestId"] == "third"
    assert refused.json()["errorMessage"] == (
        "ingest queue is full (2 events waiting, bound 1); retry later")  # first and second
    gated.gate.set()
    first.join()
    second.join()
    assert answers == {"first": 200, "second": 200}
    writer.flush()  # the store catches up: "second" leaves the spool's batch
    retried = client.post("/firehose/v1", content=envelope(b"{}", request_id="third"),
                          headers=firehose_headers("third"))
    assert retried.status_code == 200
    assert store.read("SELECT count(*) FROM events", {}).rows == [(3,)]
    writer.close()
    store.close()
